"""What the operators see and do: the figures behind the dashboard (``/admin``).

Everything here reads what the system already records — Postgres for jobs and feature
runs, Redis for queues, workers, the limiter's window and model-call counts — so the
dashboard of every API process shows the same event, whichever host it runs on.
"""
