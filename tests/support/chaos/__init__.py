"""The chaos suite's machinery: services that can be broken on purpose, a fake Gemini that
gives each feature of each job its own fault, a batch of jobs, and the checks that say a
fault lost nothing and showed nothing false.

Everything here is private to one test: a throwaway Postgres cluster (``initdb`` and
``pg_ctl`` on a free port, :mod:`.postgres`), a redis-server that can be killed and
started again empty on the same port (:mod:`.redis_server`), the fake Gemini
(:mod:`.gemini`) and the ``refract up`` stack pointed at them, all held by a
:class:`~tests.support.chaos.rig.ChaosRig` (:mod:`.rig`). The machine's own Postgres and
Redis are never touched, and every process started here is stopped at the end, failed
test or not.

A scenario starts the stack, submits a batch (:mod:`.batch`), breaks something while
features run (:mod:`.processes` finds the worker to kill), probes the API meanwhile
(:mod:`.probe`), then runs :func:`~tests.support.chaos.checks.verify`. Each check returns
the problems it found, so that one run reports every broken promise at once
(:mod:`.findings`), not just the first.
"""
