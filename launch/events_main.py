"""``refract events`` in an interpreter gevent patched first.

gevent must patch the standard library (sockets, ssl, threading) before anything imports
it, or modules keep the unpatched originals; ``refract events`` therefore re-executes
itself through this module, whose first act is the patch.
"""

from gevent import monkey

monkey.patch_all()

from launch.cli import main  # noqa: E402  (after the patch, on purpose)

if __name__ == "__main__":
    main()
