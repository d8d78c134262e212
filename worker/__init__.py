"""The Celery side of Refract: the app factory, its configuration and its signals.

Task bodies live in ``tasks/``; this package only wires them into a Celery app.
"""
