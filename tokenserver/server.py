"""The HTTP side: a small, strict HTTP/1.1 server on asyncio (stdlib only).

What it answers (every other request gets an answer without touching Object Storage)::

    GET|HEAD /.well-known/acme-challenge/<token>   200 text/plain key authorization | 404
    GET|HEAD /healthz                              200 "ok"
    any other path                                 404
    any other method                               405, Allow: GET, HEAD
    malformed request line or headers, bad Host,   400 (connection closed)
    a Content-Length that is not 1-18 digits
    request line > 2 KiB / head > 8 KiB            414 / 431 (connection closed)
    head not complete within the header timeout    408 (connection closed)
    Object Storage failed / slow or saturated      502 / 503 with Retry-After

``<token>`` must match ``[A-Za-z0-9_-]{1,256}`` (RFC 8555 §8.3: base64url, at least 128 bits;
256 characters is far above any CA's). The path is never percent-decoded or normalised: a
token needs no escaping, so ``%2e%2e``, ``..`` or an encoded token simply do not match.

Why asyncio and not ``http.server``: a thread per connection costs a thread per idle
keep-alive connection and a context switch per request, and a slowloris client holds a thread
per connection; here a connection is a small object, a slow one costs a timer entry, and one
core answers thousands of cached requests per second. The only blocking work — the SDK's
GetObject — runs on the bounded pool of :class:`~tokenserver.cache.TokenCache`.

Defences, each bounded: request line and head sizes; the head must arrive within
``header_timeout`` of its first byte (slowloris); idle keep-alive connections close after
``idle_timeout`` (above the OCI load balancer's 60 s default idle timeout, so the LB — not us —
closes idle backend connections, avoiding a race with a request in flight); at most
``max_connections`` open connections; pipelined input is processed in batches and reading
pauses while a response is pending or the client does not read its answers; a request that
announces a body is answered and the connection closed (we never read bodies, so the bytes
that follow are not parsed as a request: no smuggling).

The access log: one JSON object per line (see :class:`AccessLog`), never the object content.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Self, TextIO

from tokenserver.cache import TokenCache
from tokenserver.settings import Settings
from tokenserver.store import ObjectStorageTokens, StorageError

logger = logging.getLogger(__name__)

CHALLENGE_PATH = b"/.well-known/acme-challenge/"
HEALTH_PATH = b"/healthz"
MAX_TOKEN = 256
TOKEN_RE = re.compile(rb"[A-Za-z0-9_-]{1,%d}" % MAX_TOKEN)  # always fullmatch()
MAX_REQUEST_LINE = 2048  # a valid challenge request line is under 300 bytes
MAX_HEAD = 8192
MAX_CONTENT_LENGTH_DIGITS = 18  # up to 10^18 - 1 bytes: a length, not an overflow attempt
MAX_HEADERS = 64
MAX_BUFFERED = 65536  # pipelined input held while a response is pending, before pausing reads
PIPELINE_BATCH = 32  # requests answered per callback before yielding to other connections
SWEEP_INTERVAL = 0.25  # how often timeouts are checked and the access log flushed
STOP_GRACE = 2.0  # seconds in-flight requests get when the server stops
# Closing a socket that still has unread input makes the kernel send RST, which can destroy the
# answer we just wrote before the client reads it (a 400 for a request whose rest is still
# arriving, a 503 to a connection over the limit). So we half-close (FIN after the answer), drop
# what still arrives, and close on the client's FIN or after LINGER seconds (nginx's
# "lingering close").
LINGER = 2.0
MAX_LINGERING_REJECTS = 128  # rejected connections kept lingering at once; beyond, closed at once
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_METHOD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")  # RFC 9110 token
_FIELD_NAME = _METHOD
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
_LABEL = rb"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(
    rb"(?:%s(?:\.%s)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?" % (_LABEL, _LABEL)
)
MAX_HOST = 261  # 253 for the name, ':' and a port
_ABSOLUTE = re.compile(rb"https?://([^/?#]*)([^#]*)", re.IGNORECASE)
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}
_BODIES = {status: reason.lower() + b"\n" for status, reason in _REASONS.items()}
_BODIES[200] = b"ok\n"
_ALLOW = b"Allow: GET, HEAD\r\n"
_RETRY = b"Retry-After: 1\r\n"
_LOG_PATH = 120  # characters of the path kept in a log line
_LOG_FIELD = 96


class _Clock:
    """``Date`` header bytes, rebuilt once per second (RFC 9110 §6.6.1: origin servers send it)."""

    def __init__(self) -> None:
        self._second = -1
        self._date = b""

    def date(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._date = b"Date: %s\r\n" % email.utils.formatdate(now, usegmt=True).encode()
        return self._date


class AccessLog:
    """One JSON object per request on ``stream``; buffered, flushed by the server's sweeper.

    Fields: ``time`` (UTC, ms), ``remote`` (peer address), ``forwarded_for`` (the
    ``X-Forwarded-For`` the load balancer adds: the validator's address), ``method``, ``path``
    (at most 120 characters; tokens are public, the cap only bounds the line), ``host``,
    ``status``, ``bytes`` (body bytes sent), ``duration_ms``, ``cache`` (``hit``, ``negative``,
    ``miss``, ``coalesced`` or null when the bucket was not consulted) and ``user_agent``. Never
    the key authorization. Untrusted values are cut to a bounded length; JSON escapes the rest.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, entry: dict[str, object]) -> None:
        """Append one line (not flushed)."""
        # A closed or broken log stream must not stop serving.
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        """Push buffered lines out."""
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()


def _text(value: bytes | None, limit: int = _LOG_FIELD) -> str | None:
    if value is None:
        return None
    text = value[: limit + 1].decode("latin-1")
    return text if len(text) <= limit else text[:limit] + "..."


class _Request:
    """What one request asked, and what the access log needs to say about it."""

    __slots__ = (
        "cache",
        "forwarded_for",
        "head_only",
        "host",
        "keep_alive",
        "method",
        "path",
        "started",
        "user_agent",
    )

    def __init__(self, started: float) -> None:
        self.started = started
        self.method = b"-"
        self.path = b"-"
        self.host: bytes | None = None
        self.user_agent: bytes | None = None
        self.forwarded_for: bytes | None = None
        self.head_only = False
        self.keep_alive = False
        self.cache: str | None = None


class _Core:
    """State shared by every connection of one server (event-loop thread only)."""

    def __init__(self, settings: Settings, cache: TokenCache, access_log: AccessLog | None) -> None:
        self.settings = settings
        self.cache = cache
        self.access_log = access_log
        self.clock = _Clock()
        self.connections: set[_Connection] = set()
        self.stopping = False
        self.rejected_connections = 0
        self.lingering_rejects = 0


class _Connection(asyncio.Protocol):
    """One client connection: parse, answer in order, enforce the limits of the module doc."""

    def __init__(self, core: _Core) -> None:
        self.core = core
        self.transport: asyncio.Transport | None = None
        self.remote = "-"
        self.buffer = bytearray()
        self.busy = False  # a response is waiting for Object Storage
        self.closing = False
        self.write_paused = False
        self.read_paused = False
        self.scheduled = False  # a _process call is queued (pipelined batch)
        self.eof = False  # the client half-closed: answer what it sent, then close
        self.scanned = 0  # bytes of the buffer already searched for the end of a head
        self.deadline = 0.0
        self.deadline_kind = "idle"  # idle: close quietly; head: 408; write: abort

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):  # pragma: no cover - TCP only
            transport.close()
            return
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.remote = str(peer[0]) if peer else "-"
        core = self.core
        if core.stopping or len(core.connections) >= core.settings.max_connections:
            # Over the limit: one cheap answer and close, so the kernel's accept queue drains.
            core.rejected_connections += 1
            self.closing = True
            transport.write(self._head(503, _BODIES[503], keep_alive=False, extra=_RETRY))
            transport.write(_BODIES[503])
            if core.lingering_rejects >= MAX_LINGERING_REJECTS:
                transport.close()
                return
            core.lingering_rejects += 1
            transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER / 4, self._end_reject)
            return
        core.connections.add(self)
        transport.set_write_buffer_limits(high=65536)
        self._expect("idle", core.settings.idle_timeout)

    def _end_reject(self) -> None:
        self.core.lingering_rejects -= 1
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # lingering: drop whatever still arrives
        if not (self.buffer or self.busy or self.write_paused):
            self._expect("head", self.core.settings.header_timeout)
        self.buffer += data
        if self.busy or self.write_paused or self.scheduled:
            if len(self.buffer) > MAX_BUFFERED and not self.read_paused:
                self.read_paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]
            return
        self._process()

    def eof_received(self) -> bool:
        if self.closing:
            return False  # we were lingering for this: let the transport close
        # The client finished sending: answer what it sent (done unless a fetch or a batch is
        # pending), then close. True keeps our side open for those answers.
        self.eof = True
        if not (self.busy or self.scheduled):
            self._close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - asyncio signature
        self.closing = True
        self.core.connections.discard(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        if not self.closing:
            self._expect("write", self.core.settings.header_timeout)

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.busy and not self.closing:
            self._restart_deadline()
            self._process()

    def _restart_deadline(self) -> None:
        # After a pause (a storage read, a full write buffer): a fresh deadline for what is next.
        if self.buffer:
            self._expect("head", self.core.settings.header_timeout)
        else:
            self._expect("idle", self.core.settings.idle_timeout)

    # ------------------------------------------------------------------ timeouts

    def _expect(self, kind: str, seconds: float) -> None:
        self.deadline_kind = kind
        self.deadline = time.monotonic() + seconds

    def check_deadline(self, now: float) -> None:
        """Called by the sweeper: act on an expired deadline."""
        if now < self.deadline:
            return
        if self.deadline_kind in ("linger", "write"):
            self.closing = True
            self.transport.abort()  # type: ignore[union-attr]
        elif self.closing or self.busy:
            return
        elif self.deadline_kind == "head":
            request = _Request(time.perf_counter())
            self._reply(request, 408, close=True)
        else:
            self._close()

    # ------------------------------------------------------------------ parsing

    def _process(self) -> None:  # noqa: C901 - one loop; each branch is a limit of the module doc
        self.scheduled = False
        handled = 0
        buffer = self.buffer
        while not (self.busy or self.closing or self.write_paused):
            # RFC 9112 §2.2: ignore empty lines before a request line.
            while buffer[:2] == b"\r\n" or buffer[:1] == b"\n":
                del buffer[: 2 if buffer[:1] == b"\r" else 1]
                self.scanned = 0
            if not buffer:
                break
            # Search only what is new (and the 3 bytes before it, a split "\r\n\r\n"): a client
            # sending its head a byte at a time must not cost a rescan of the whole head each time.
            end = _HEAD_END.search(buffer, max(0, self.scanned - 3))
            if end is None:
                self.scanned = len(buffer)
                line_end = buffer.find(b"\n")
                if (line_end < 0 and len(buffer) > MAX_REQUEST_LINE) or line_end > MAX_REQUEST_LINE:
                    self._reply(_Request(time.perf_counter()), 414, close=True)
                elif len(buffer) > MAX_HEAD:
                    self._reply(_Request(time.perf_counter()), 431, close=True)
                break
            head = bytes(buffer[: end.start()])
            del buffer[: end.end()]
            self.scanned = 0
            self._request(head)
            handled += 1
            if handled >= PIPELINE_BATCH and buffer:
                # Yield so a client pipelining thousands of requests cannot hold the loop.
                self.scheduled = True
                asyncio.get_running_loop().call_soon(self._process)
                break
        if self.closing:
            return
        if self.eof and not (self.busy or self.scheduled or self.write_paused):
            self._close()
            return
        if self.read_paused and len(buffer) < MAX_BUFFERED // 2:
            self.read_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        if not (buffer or self.busy or self.write_paused):
            self._expect("idle", self.core.settings.idle_timeout)
        elif buffer and handled and not self.busy:
            # A new head has begun. Only then: more bytes of the same head never extend its
            # deadline (a slowloris client sends one byte at a time).
            self._expect("head", self.core.settings.header_timeout)

    def _request(self, head: bytes) -> None:  # noqa: C901, PLR0911, PLR0912, PLR0915 - one flat parser
        request = _Request(time.perf_counter())
        lines = head.split(b"\n")
        request_line = lines[0].removesuffix(b"\r")
        if len(request_line) > MAX_REQUEST_LINE:
            return self._reply(request, 414, close=True)
        if len(head) > MAX_HEAD:
            return self._reply(request, 431, close=True)
        parts = request_line.split(b" ")
        if len(parts) != 3:  # noqa: PLR2004 - method, target, version
            return self._reply(request, 400, close=True)
        method, target, version = parts
        request.method, request.path = method, target
        if not _METHOD.fullmatch(method):
            return self._reply(request, 400, close=True)
        if version == b"HTTP/1.1":
            request.keep_alive = True
        elif version != b"HTTP/1.0":
            return self._reply(request, 505 if _VERSION.fullmatch(version) else 400, close=True)
        if len(lines) - 1 > MAX_HEADERS:
            return self._reply(request, 431, close=True)
        hosts = 0
        has_body = False
        for raw in lines[1:]:
            line = raw.removesuffix(b"\r")
            name, colon, value = line.partition(b":")
            # No obsolete line folding (RFC 9112 §5.2) and no space before the colon (§5.1).
            if not colon or not _FIELD_NAME.fullmatch(name):
                return self._reply(request, 400, close=True)
            name = name.lower()
            value = value.strip(b" \t")
            if name == b"host":
                hosts += 1
                request.host = value
            elif name == b"connection":
                options = {option.strip() for option in value.lower().split(b",")}
                if b"close" in options:
                    request.keep_alive = False
                elif b"keep-alive" in options:
                    request.keep_alive = True
            elif name == b"content-length":
                # Digits only (bytes.isdigit is ASCII) and at most 18 of them: RFC 9110 §8.6
                # asks recipients to expect huge numerals without failing on the conversion
                # (Python's int() refuses more than 4,300 digits), and RFC 9112 §6.3 answers an
                # invalid length with 400. No body is ever 10^18 bytes.
                if not value.isdigit() or len(value) > MAX_CONTENT_LENGTH_DIGITS:
                    return self._reply(request, 400, close=True)
                has_body = has_body or int(value) > 0
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"user-agent":
                request.user_agent = value
            elif name == b"x-forwarded-for":
                request.forwarded_for = value
        if has_body:
            request.keep_alive = False  # the body is never read: close after answering
        if method == b"HEAD":
            request.head_only = True
        elif method != b"GET":
            return self._reply(request, 405, extra=_ALLOW)
        path = target
        if not target.startswith(b"/"):
            absolute = _ABSOLUTE.fullmatch(target)  # RFC 9112 §3.2.2: accept absolute-form
            if absolute is None:
                return self._reply(request, 400, close=True)
            # RFC 9112 §3.2.2: the target's authority replaces the Host header's value.
            request.host, path = absolute.group(1), absolute.group(2) or b"/"
            hosts = max(hosts, 1)
        path = path.split(b"?", 1)[0]
        request.path = path
        # Health first and without a Host check: load-balancer health checkers do not all send
        # one, and a health check that fails on a missing header takes the backend out.
        if path == HEALTH_PATH:
            return self._reply(request, 200, body=_BODIES[200])
        if hosts > 1 or (hosts == 1 and not _valid_host(request.host)):
            return self._reply(request, 400, close=True)
        if hosts == 0 and version == b"HTTP/1.1":  # RFC 9112 §3.2: a 1.1 request has a Host
            return self._reply(request, 400, close=True)
        if not path.startswith(CHALLENGE_PATH):
            return self._reply(request, 404)
        token = path[len(CHALLENGE_PATH) :]
        if not TOKEN_RE.fullmatch(token):
            return self._reply(request, 404)
        return self._token(request, token.decode("ascii"))

    # ------------------------------------------------------------------ answering

    def _token(self, request: _Request, token: str) -> None:
        cache = self.core.cache
        found, body = cache.cached(token)
        if found:
            request.cache = "hit" if body is not None else "negative"
            self._answer_token(request, body)
            return
        try:
            future, coalesced = cache.fetch(token)
        except StorageError as exc:
            request.cache = "saturated"
            self._storage_failed(request, exc)
            return
        request.cache = "coalesced" if coalesced else "miss"
        self.busy = True
        future.add_done_callback(lambda done: self._fetched(request, done))

    def _fetched(self, request: _Request, done: asyncio.Future[bytes | None]) -> None:
        error = done.exception()
        self.busy = False
        if self.closing:
            return
        if error is None:
            self._answer_token(request, done.result())
        elif isinstance(error, StorageError):
            self._storage_failed(request, error)
        else:  # pragma: no cover - TokenCache only fails with StorageError
            raise error
        if not self.closing:
            self._restart_deadline()
            self._process()

    def _answer_token(self, request: _Request, body: bytes | None) -> None:
        if body is None:
            self._reply(request, 404)
        else:
            self._reply(request, 200, body=body)

    def _storage_failed(self, request: _Request, error: StorageError) -> None:
        # TokenCache logged it for the operator (once per read); the client gets a bare status.
        extra = _RETRY if error.status == 503 else b""  # noqa: PLR2004
        self._reply(request, error.status, extra=extra)

    def _head(self, status: int, body: bytes, *, keep_alive: bool, extra: bytes = b"") -> bytes:
        return b"".join(
            (
                b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
                self.core.clock.date(),
                b"Content-Type: text/plain\r\nContent-Length: %d\r\n" % len(body),
                b"Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
                extra,
                b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n",
            )
        )

    def _reply(
        self,
        request: _Request,
        status: int,
        *,
        body: bytes | None = None,
        close: bool = False,
        extra: bytes = b"",
    ) -> None:
        if self.closing:
            return
        if body is None:
            body = _BODIES[status]
        keep_alive = request.keep_alive and not close and not self.core.stopping
        head = self._head(status, body, keep_alive=keep_alive, extra=extra)
        sent = 0 if request.head_only else len(body)
        transport = self.transport
        if transport is None:  # pragma: no cover - replies follow connection_made
            return
        transport.write(head + body if sent else head)
        log = self.core.access_log
        if log is not None:
            log.write(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "remote": self.remote,
                    "forwarded_for": _text(request.forwarded_for, 64),
                    "method": _text(request.method, 16),
                    "path": _text(request.path, _LOG_PATH),
                    "host": _text(request.host, 64),
                    "status": status,
                    "bytes": sent,
                    "duration_ms": round((time.perf_counter() - request.started) * 1000, 3),
                    "cache": request.cache,
                    "user_agent": _text(request.user_agent),
                }
            )
        if not keep_alive:
            self._close()

    def _close(self) -> None:
        """Close after what was written; lingering (see LINGER) unless the client is done."""
        if self.closing:
            return
        self.closing = True
        transport = self.transport
        if transport is None:  # pragma: no cover - closes follow connection_made
            return
        if self.eof or not transport.can_write_eof():
            transport.close()  # flushes what was written, then closes
            return
        transport.write_eof()  # FIN once the answer is flushed
        self._expect("linger", LINGER)  # the sweeper aborts it if the client never closes


def _valid_host(host: bytes | None) -> bool:
    return host is not None and len(host) <= MAX_HOST and _HOST.fullmatch(host) is not None


class TokenServer:
    """The token server: bind, serve, stop. In-process (a background thread) or in the foreground.

    In-process (tests, the sandbox, the demo)::

        server = TokenServer(settings)        # credentials are loaded here (SettingsError)
        port = server.start()                 # bound and serving when this returns
        ...
        server.stop()                         # closes every connection and the thread

    or ``with TokenServer(settings) as server: server.port``. ``reader`` replaces the Object
    Storage reader (a callable ``token -> bytes | None`` raising StorageError), e.g. an
    :class:`~tokenserver.store.ObjectStorageTokens` built around an SDK client the caller made.
    ``access_log`` is a text stream for the JSON access log (None: no access log). ``sock`` is
    a bound socket to serve on instead of ``settings.host``/``port`` (the caller needs the port
    before the server can start, e.g. to seed it into a load balancer's backend set); the server
    listens on it and closes it when it stops.

    :meth:`run` serves in the calling thread until :meth:`stop` (``python -m tokenserver``).
    ``stats()`` tells how many storage reads and connections there were (for tests).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        reader: Callable[[str], bytes | None] | None = None,
        access_log: TextIO | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self.settings = settings
        self._tokens = None if reader is not None else ObjectStorageTokens.from_settings(settings)
        self._reader = reader if reader is not None else self._tokens.get  # type: ignore[union-attr]
        self._access_log = AccessLog(access_log) if access_log is not None else None
        self._sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop_requested: asyncio.Event | None = None
        self._core: _Core | None = None
        self.port = 0

    # ------------------------------------------------------------------ public API

    def start(self) -> int:
        """Serve in a background thread; returns the bound port once it accepts connections.

        Raises:
            OSError: the address cannot be bound.

        """
        if self._thread is not None:
            msg = "the token server is already started"
            raise RuntimeError(msg)
        self._thread = threading.Thread(target=self._run_thread, name="tokenserver", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self.port

    def run(
        self, *, on_ready: Callable[[int], None] | None = None, handle_signals: bool = False
    ) -> None:
        """Serve in this thread until :meth:`stop` (or, with ``handle_signals``, SIGTERM/SIGINT).

        ``on_ready(port)`` is called once the socket accepts connections.
        """
        asyncio.run(self._serve(on_ready, handle_signals=handle_signals))

    def _run_thread(self) -> None:
        try:
            self.run()
        except BaseException as exc:
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:  # pragma: no cover - the loop itself failed after start-up
                logger.exception("token server loop failed")

    def stop(self) -> None:
        """Stop accepting, give in-flight requests a moment, close everything; idempotent."""
        loop, stop = self._loop, self._stop_requested
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=STOP_GRACE + 5)
            self._thread = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (for a server bound to every or the loopback address)."""
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        """Storage reads started, misses and connections refused, open connections."""
        core = self._core
        if core is None:
            return {"fetches": 0, "refused_fetches": 0, "rejected_connections": 0,
                    "open_connections": 0}  # fmt: skip
        return {
            "fetches": core.cache.fetches,
            "refused_fetches": core.cache.refused,
            "rejected_connections": core.rejected_connections,
            "open_connections": len(core.connections),
        }

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the loop

    async def _serve(self, on_ready: Callable[[int], None] | None, *, handle_signals: bool) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop_requested = asyncio.Event()
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._stop_requested.set)
        settings = self.settings
        cache = TokenCache(
            self._reader,
            loop=loop,
            positive_ttl=settings.cache_seconds,
            negative_ttl=settings.negative_cache_seconds,
            timeout=settings.storage_timeout,
            threads=settings.storage_threads,
            max_pending=settings.max_pending_fetches,
        )
        core = _Core(settings, cache, self._access_log)
        self._core = core
        try:
            if self._sock is not None:
                server = await loop.create_server(
                    lambda: _Connection(core), sock=self._sock, backlog=1024
                )
            else:
                server = await loop.create_server(
                    lambda: _Connection(core),
                    host=settings.host,
                    port=settings.port,
                    backlog=1024,
                    reuse_address=True,
                )
        except OSError:
            cache.close()
            raise
        self.port = int(server.sockets[0].getsockname()[1])
        if self._tokens is not None:
            cache.run_in_background(self._tokens.warm_up)
        sweeper = loop.create_task(self._sweep(core))
        logger.info(
            "listening host=%s port=%d bucket=%s", settings.host, self.port, settings.bucket
        )
        self._ready.set()
        if on_ready is not None:
            on_ready(self.port)
        try:
            await self._stop_requested.wait()
        finally:
            await self._shutdown(core, server, sweeper)

    async def _shutdown(
        self, core: _Core, server: asyncio.Server, sweeper: asyncio.Task[None]
    ) -> None:
        """Stop accepting; idle connections close now, busy ones get STOP_GRACE, then abort."""
        loop = asyncio.get_running_loop()
        core.stopping = True
        server.close()
        for connection in list(core.connections):
            if not connection.busy:
                connection._close()  # noqa: SLF001 - the server owns its connections
        deadline = loop.time() + STOP_GRACE
        # Polling: a handful of connections at most, once, at shutdown.
        while any(c.busy for c in core.connections) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        for connection in list(core.connections):
            if connection.transport is not None:
                connection.transport.abort()
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await server.wait_closed()
        core.cache.close()
        if self._access_log is not None:
            self._access_log.flush()
        logger.info("stopped port=%d", self.port)

    async def _sweep(self, core: _Core) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = time.monotonic()
            for connection in list(core.connections):
                connection.check_deadline(now)
            if core.access_log is not None:
                core.access_log.flush()
