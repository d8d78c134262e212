"""Alembic migrations for Refract's schema (see ``refract/migrate.py``)."""
