"""Celery task bodies: one module per feature, plus the reconciler.

Each feature task re-reads its job by id, runs through :mod:`tasks.runner` (claim,
progress, result upsert, job status) and calls the model gateway once.
"""
