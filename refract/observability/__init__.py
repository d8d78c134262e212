"""Observability: the Prometheus metrics every process records and the API serves.

:mod:`.metrics` holds the metric objects and the small functions call sites use
(``job_submitted``, ``run_finished``, ``model_call``, ``tokens``, ``limiter_wait``);
:mod:`.multiproc` the directory through which every process of a host shares its values
(prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``); :mod:`.exposition`
renders them for a scrape (and serves a worker's own port); :mod:`.collect` adds the gauges
read at scrape time (jobs per status and features in flight from Postgres, queue depth from
the broker). The layer sits just above ``refract.core``, so that the gateway, the tasks,
the API and the launchers can all use it.
"""
