"""Helpers the test suites share: real services, free ports, a running Refract stack."""
