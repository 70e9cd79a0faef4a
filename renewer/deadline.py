"""Bounding blocking network I/O by a monotonic deadline, total time included.

A socket timeout bounds one ``recv``: a peer that accepts and then sends a byte every few seconds
(or never finishes a response without a length) holds a request for as long as it likes. Every
network call of a run must end by the run's deadline, so the sockets themselves are cut: a
:class:`SocketCutoff` shuts down (``shutdown(SHUT_RDWR)``, from a timer thread) every socket it
watches once its instant has passed, which makes a blocked ``recv``/``send``/TLS read return at
once; the caller then sees a connection error and reports the deadline.

:func:`bound_session` applies this to a ``requests`` session (the ``acme`` library's, and the
OCI SDK's vendored copy, which share urllib3): every connection its pools open gets its connect
and TLS handshake bounded by the time left (CPython bounds a whole handshake by the socket
timeout) and is cut when the deadline passes. Nothing here imports ``requests`` or urllib3: the
classes are taken from the session, so the module stays stdlib-only and shared by both families.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

DeadlineOf = Callable[[], float | None]
"""Returns the current deadline (a ``time.monotonic()`` instant), or None for none."""


class SocketCutoff:
    """Shuts down the sockets it watches when ``deadline`` (``time.monotonic()``) passes.

    ``shutdown`` is called through :class:`socket.socket` itself, also for a TLS socket:
    ``SSLSocket.shutdown`` would drop the TLS state under a reader in another thread. A socket
    closed meanwhile has no file descriptor any more, so a late cut cannot reach a reused one.
    """

    def __init__(self, deadline: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.fired = False
        delay = max(0.0, deadline - monotonic())
        self._timer = threading.Timer(delay, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        """Cut ``sock`` at the deadline (at once when it has passed already)."""
        if sock is None:
            return
        with self._lock:
            if not self.fired:
                self._sockets.append(sock)
                return
        _shutdown(sock)

    def cancel(self) -> None:
        """Stop the timer; watched sockets stay as they are."""
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def _cut(self) -> None:
        with self._lock:
            self.fired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def cut_at(
    deadline: float, *, monotonic: Callable[[], float] = time.monotonic
) -> Iterator[SocketCutoff]:
    """A :class:`SocketCutoff` for the duration of the block."""
    cutoff = SocketCutoff(deadline, monotonic=monotonic)
    try:
        yield cutoff
    finally:
        cutoff.cancel()


def remaining(
    deadline_of: DeadlineOf, monotonic: Callable[[], float] = time.monotonic
) -> float | None:
    """Seconds left before ``deadline_of()``, None without a deadline (may be negative)."""
    deadline = deadline_of()
    return None if deadline is None else deadline - monotonic()


def bound_session(session: Any, deadline_of: DeadlineOf) -> None:  # noqa: ANN401 - a requests.Session of either copy
    """Bound every connection ``session`` opens from now on by ``deadline_of()``.

    The session's HTTP(S) adapters get pool classes whose connections refuse to connect after
    the deadline, connect and handshake within the time left, and are cut when it passes (a
    kept-alive connection too: the pool then sees it dropped). Open connections are closed.
    Without a deadline (``deadline_of()`` is None) connections behave as before.
    """
    for adapter in list(session.adapters.values()):
        manager = getattr(adapter, "poolmanager", None)
        if manager is None:
            continue
        manager.pool_classes_by_scheme = {
            scheme: _bounded_pool(pool_class, deadline_of)
            for scheme, pool_class in manager.pool_classes_by_scheme.items()
        }
        manager.clear()


def _bounded_pool(pool_class: Any, deadline_of: DeadlineOf) -> type:  # noqa: ANN401 - a urllib3 pool class
    if getattr(pool_class, "_bounded_by_deadline", False):
        pool_class = pool_class.__mro__[1]  # bound again: replace the previous deadline
    connection_class = _bounded_connection(pool_class.ConnectionCls, deadline_of)
    return type(
        f"Bounded{pool_class.__name__}",
        (pool_class,),
        {"ConnectionCls": connection_class, "_bounded_by_deadline": True},
    )


def _bounded_connection(connection_class: Any, deadline_of: DeadlineOf) -> type:  # noqa: ANN401
    """A urllib3 connection class whose sockets end by ``deadline_of()``.

    The cut is not cancelled when the connection closes: http.client closes a connection as
    soon as the headers of a ``Connection: close`` answer are read, and the body is read from
    the same socket after that. A cut of a socket really closed by then is a no-op.
    """

    def connect(self: Any) -> None:  # noqa: ANN401
        left = remaining(deadline_of)
        if left is not None:
            if left <= 0:
                msg = "not connected: the run's deadline has passed"
                raise TimeoutError(msg)
            if not isinstance(self.timeout, int | float) or self.timeout > left:
                self.timeout = left
            self._deadline_cutoff = SocketCutoff(time.monotonic() + left)
        connection_class.connect(self)
        cutoff: SocketCutoff | None = getattr(self, "_deadline_cutoff", None)
        if cutoff is not None:
            cutoff.watch(self.sock)

    def new_conn(self: Any) -> socket.socket:  # noqa: ANN401
        sock: socket.socket = connection_class._new_conn(self)  # noqa: SLF001
        cutoff: SocketCutoff | None = getattr(self, "_deadline_cutoff", None)
        if cutoff is not None:
            # The TLS handshake that follows is one call bounded by this timeout.
            left = remaining(deadline_of)
            if left is not None:
                sock.settimeout(max(0.001, left))
            cutoff.watch(sock)
        return sock

    return type(
        f"Bounded{connection_class.__name__}",
        (connection_class,),
        {"connect": connect, "_new_conn": new_conn},
    )
