"""Refract's shared core: what both the API (``api/``) and the workers (``tasks/``) need.

Settings, database models and sessions, the feature catalog, the model gateway, the
progress bus and media storage live here, so that the worker never imports the web app
and the web app never imports task bodies.
"""

__version__ = "0.1.0"
