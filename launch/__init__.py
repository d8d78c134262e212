"""Process launchers: the ``refract`` command, the one-machine stack, the demo and the
HTTP client it uses. The top layer: it may import everything, nothing imports it."""
