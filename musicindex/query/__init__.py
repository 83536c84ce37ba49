"""The query layer: genre and similarity answers from pgvector. Reads only."""
