"""Foundations: settings, errors, the database and its models, logging, and the plain
values every other layer shares. Nothing here imports any other part of Refract."""
