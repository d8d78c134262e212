"""Refract's test suites."""
