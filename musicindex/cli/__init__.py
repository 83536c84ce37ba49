"""The `musicindex` command: a thin layer over the Python API (``MusicIndex``).

``main`` builds the app from one module per command group: ``admin`` (services, db,
doctor), ``ingest`` (ingest, status, worker, scheduler), ``train`` (train, models,
evaluate, report), ``query`` (similar, recommend, genre, ...), ``demo``; ``common`` holds
error handling and the index connection, ``render`` the tables and progress bars.
Run it as ``musicindex`` or ``python -m musicindex``.
"""
