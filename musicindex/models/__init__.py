"""Batch training over the stored tables: classifiers, clustering, networks, the registry, backfill."""
