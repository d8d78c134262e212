"""A TCP proxy on 127.0.0.1 whose link can be cut and restored: a network blip on demand.

Clients connect to :attr:`CuttableProxy.port`; every connection is relayed to the target.
:meth:`CuttableProxy.cut` drops every open connection and refuses new ones (as a network
partition or a restarting server would look to a client); :meth:`CuttableProxy.restore`
lets connections through again. The target itself is never touched.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from types import TracebackType
from typing import Self


class CuttableProxy:
    """Relays 127.0.0.1:``port`` to ``target``; ``cut()`` and ``restore()`` the link."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    def url(self, scheme: str = "redis", path: str = "/0") -> str:
        """A URL for clients to use instead of the target's."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def start(self) -> Self:
        """Start accepting."""
        self._thread.start()
        return self

    def cut(self) -> None:
        """Drop every connection and refuse new ones until :meth:`restore`."""
        self._cut.set()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def restore(self) -> None:
        """Let connections through again."""
        self._cut.clear()

    def stop(self) -> None:
        """Close everything."""
        self._stop.set()
        self.cut()
        self._listener.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut.is_set():
                client.close()  # refused, as an unreachable server is
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            while not self._stop.is_set():
                try:
                    ready = selector.select(timeout=0.2)
                    for key, _events in ready:
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            raise ConnectionError("closed")
                        key.data.sendall(data)
                except (OSError, ValueError):
                    break
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.close()
