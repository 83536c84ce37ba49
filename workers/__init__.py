"""Celery wiring: the app, thin task wrappers over ``musicindex`` functions, the beat schedule."""
