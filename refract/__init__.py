"""Refract's shared core: what both the API (``api/``) and the workers (``tasks/``) need.

Its folders are layers, each importing only from those below it: ``core`` (settings,
errors, database, models, plain values), then ``jobs`` (the job domain) and ``imaging``,
then ``youtube`` and ``analysis``, then ``gateway`` (the model backends). The worker never
imports the web app and the web app never imports task bodies; the process launchers live
apart, in ``launch/``. ``tests/unit/test_layers.py`` checks every import against this.
"""

__version__ = "0.1.0"
