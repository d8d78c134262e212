"""The job domain: the feature catalog, creating and listing jobs, changing their state,
the job resource, the progress bus and sending work to Celery."""
