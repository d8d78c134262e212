"""Kombu's Redis transport, made to fail like a lost connection when the connection is gone.

Celery treats the broker's ``connection_errors`` as recoverable (it reconnects) and every
other exception as fatal. Stock kombu (celery/kombu#582, still in kombu 5.7) breaks that
after a broker connection is lost: closing the :class:`kombu.Connection` sets its
transport's ``client`` to ``None`` (``Connection._do_close_transport``), and a channel that
outlives that close, because the close stopped half way on the dead socket, or because a
pool thread acks late, or a bootstep closes its own channel afterwards, rebuilds its
Redis connection pool lazily (``conn_or_acquire`` -> ``pool`` -> ``_get_pool`` ->
``_connparams``), which reads ``self.connection.client.hostname`` and raises
``AttributeError``. The worker then dies with ``Unrecoverable error: AttributeError("'NoneType'
object has no attribute 'hostname'")`` instead of reconnecting.

:class:`Transport` is the stock transport whose channel raises
:class:`redis.exceptions.ConnectionError` (one of the transport's ``connection_errors``)
instead, so the same moment is an ordinary lost connection. Celery uses it for a Redis
broker through ``broker_transport = "refract.jobs.broker:Transport"`` (an explicit transport
wins over the URL's scheme; see :func:`transport_for` and :mod:`refract.jobs.celery_app`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

#: What ``broker_transport`` names to select :class:`Transport`.
TRANSPORT_PATH = "refract.jobs.broker:Transport"


class BrokerConnectionClosed(RedisConnectionError):
    """The channel's broker connection was closed under it (a lost connection)."""


class Channel(kombu_redis.Channel):
    """The stock Redis channel, except that a closed connection is a connection error."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        # ``connection`` is the kombu Transport (None once the channel itself is closed);
        # its ``client`` is the kombu Connection (None once that is closed).
        transport = getattr(self, "connection", None)
        if getattr(transport, "client", None) is None:
            raise BrokerConnectionClosed(
                "the broker connection of this channel is closed; reconnect"
            )
        params: dict[str, Any] = super()._connparams(  # type: ignore[misc]  # private in the stubs
            asynchronous=asynchronous
        )
        return params

    def _create_client(self, asynchronous: bool = False) -> Any:
        """The channel's Redis client: the asynchronous one as stock kombu makes it; the
        synchronous one made once per pool and kept.

        Stock kombu builds a new ``redis.Redis`` around the channel's pool for every
        publish (``conn_or_acquire``): half a millisecond of Python each, several per job
        submitted. A client is only a handle on its pool and is safe to share between
        threads, so one per pool serves them all; a pool rebuilt after a reconnect gets
        its own.
        """
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        pool = self.pool
        cached = self.__dict__.get("_shared_client")
        if cached is None or cached.connection_pool is not pool:
            cached = super()._create_client(asynchronous=False)  # type: ignore[misc]
            self.__dict__["_shared_client"] = cached
        return cached


class Transport(kombu_redis.Transport):
    """The stock Redis transport with :class:`Channel`."""

    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """The ``broker_transport`` for ``broker_url``: :data:`TRANSPORT_PATH` for a Redis
    broker, ``None`` (kombu's choice by URL scheme) for any other.

    ``rediss://`` qualifies only when the URL carries its ``ssl_*`` options: kombu turns a
    bare ``rediss://`` into TLS without certificate checks only when the transport is
    chosen by the scheme, so an explicit transport would quietly connect without TLS.
    Sentinel (``sentinel://``) keeps kombu's own transport.
    """
    parts = urlsplit(broker_url.split(";", 1)[0].strip())
    scheme = parts.scheme.lower()
    if scheme == "redis":
        return TRANSPORT_PATH
    if scheme == "rediss" and any(key.startswith("ssl_") for key, _ in parse_qsl(parts.query)):
        return TRANSPORT_PATH
    return None
