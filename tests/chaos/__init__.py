"""Chaos tests: a real stack loses its worker, Redis, Postgres or a sane model mid-batch."""
