"""Rendering the metrics for a scrape, from one process or from all of them, at the
API's /metrics or on a worker's own port (:func:`serve`, ``REFRACT_METRICS_BIND``).

In multiprocess mode (:mod:`refract.observability.multiproc`) a scrape sums the files of
every process that has written to the directory since the stack started: gunicorn's
workers, the Celery worker and its prefork children (prometheus_client notices a fork
and opens new files under the child's pid). Without it, the process's own default
registry is served: one process, such as a test's Flask client.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from refract.observability import metrics
from refract.observability.multiproc import multiprocess_dir

# The classic text format generate_latest writes (the newest clients name another).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Union(Collector):
    """Several collectors (or registries) as one, for a single rendering."""

    def __init__(self, parts: Sequence[Collector]) -> None:
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        """Every part's metrics in turn."""
        for part in self.parts:
            yield from part.collect()


class ProcessMetrics(Collector):
    """What the processes recorded: every process's files in multiprocess mode, else this
    process's default registry (with its process and runtime metrics)."""

    def collect(self) -> Iterator[Metric]:
        """The recorded metrics, read now."""
        # Our metrics exist (at zero) even in a process that has recorded nothing yet.
        metrics.ensure_created()
        path = multiprocess_dir()
        if path is None or not path.is_dir():
            yield from REGISTRY.collect()
            return
        # A fresh registry per scrape: the collector reads the files as they are now.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
        yield from registry.collect()


def render(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of every process's metrics plus ``extra`` (scrape-time gauges)."""
    return generate_latest(_Union([ProcessMetrics(), *extra]))


def parse_bind(bind: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:9100"``, ``":9100"`` for every address) as (host, port)."""
    host, sep, port = bind.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"REFRACT_METRICS_BIND must be host:port, not {bind!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve(bind: str) -> WSGIServer:
    """Serve :class:`ProcessMetrics` at ``bind`` from a daemon thread, without a key (for a
    scraper on a private network); the server, to ``shutdown()`` when done."""
    host, port = parse_bind(bind)
    server, _thread = start_http_server(port, addr=host, registry=ProcessMetrics())
    return server
