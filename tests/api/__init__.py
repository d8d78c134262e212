"""Tests of the HTTP API (``api/``) against real Postgres and Redis."""
