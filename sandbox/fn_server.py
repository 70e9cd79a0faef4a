"""The real fdk server running ``func.py``, invoked the way ``fn invoke`` / the Fn agent does.

:class:`FnServer` starts ``fdk func.py handler`` as a process of its own with the environment
OCI Functions gives a container (``FN_FORMAT=http-stream``, ``FN_LISTENER=unix:…/lsnr.sock``, the
function's configuration as variables), waits for the FDK's ``lsnr.sock`` symlink (the FDK
binds ``phonylsnr.sock`` and links it when ready), and :meth:`FnServer.invoke` sends
``POST /call`` over that unix socket with ``Fn-Call-Id`` and ``Fn-Deadline`` headers, one call at
a time on one connection, as the agent does. The server's stdout/stderr (the function's log) is
kept in a file for tests to read. Sandbox only.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 15.0  # the contract says 5 s; a loaded CI machine gets slack
_SOCKET_PATH_MAX = 107


@dataclass(frozen=True, slots=True)
class FnResponse:
    """One invocation's answer: the status the FDK sent, its headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    call_id: str

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", errors="replace")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class FnServer:
    """``fdk <func.py> handler`` in a subprocess; a context manager that always stops it."""

    def __init__(
        self,
        workdir: Path,
        environment: Mapping[str, str],
        *,
        function: Path = ROOT / "func.py",
        name: str = "acme-renewer",
        python_path: Sequence[Path] | None = None,
    ) -> None:
        self.workdir = workdir
        # None: this venv's fdk with the repository on the path. Otherwise exactly these
        # directories and the standard library (``python -S``: no site-packages at all), as
        # in the function's image (tests/image runs the pruned tree this way).
        self.python_path = python_path
        self.environment = dict(environment)
        self.function = function
        self.name = name
        self.log_path = workdir / "fn.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: _UnixConnection | None = None
        self.socket_path = workdir / "iofs" / "lsnr.sock"
        self._short_dir: Path | None = None
        # The FDK binds "phony" + the name first (then links the name to it): that is the longer.
        if len(str(self.socket_path.parent / f"phony{self.socket_path.name}")) > _SOCKET_PATH_MAX:
            # AF_UNIX paths are limited to 107 bytes; fall back to a short private directory.
            self._short_dir = Path(tempfile.mkdtemp(prefix="fn-"))
            self.socket_path = self._short_dir / "lsnr.sock"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the FDK and wait until it listens; RuntimeError (with its log) otherwise."""
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "PYTHONPATH": os.pathsep.join(map(str, self.python_path or [ROOT])),
            "FN_FORMAT": "http-stream",
            "FN_LISTENER": f"unix:{self.socket_path}",
            "FN_TYPE": "sync",
            "FN_MEMORY": "256",
            "FN_APP_NAME": "acme",
            "FN_FN_NAME": self.name,
            **self.environment,
        }
        if self.python_path is None:
            command = [str(Path(sys.executable).parent / "fdk"), str(self.function), "handler"]
        else:
            # What the image's /python/bin/fdk script runs, from the given tree only.
            runner = "import sys; from fdk.scripts.fdk import main; sys.argv[0] = 'fdk'; main()"
            command = [sys.executable, "-S", "-c", runner, str(self.function), "handler"]
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own venv's fdk and func.py
            command,
            env=env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.socket_path.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                msg = f"the fdk server did not start; its log:\n{self.log()}"
                raise RuntimeError(msg)
            time.sleep(0.02)

    def invoke(
        self,
        body: bytes | str = b"",
        *,
        call_id: str | None = None,
        timeout: float = 300.0,
        headers: Mapping[str, str] | None = None,
    ) -> FnResponse:
        """``POST /call`` as the Fn agent does; the deadline is now + ``timeout``."""
        if self._process is None:
            msg = "the fdk server is not running"
            raise RuntimeError(msg)
        call_id = call_id or f"01{uuid.uuid4().hex[:24].upper()}"
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        payload = body.encode() if isinstance(body, str) else body
        request_headers = {
            "Fn-Call-Id": call_id,
            "Fn-Deadline": deadline.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "Fn-Invoke-Type": "sync",
            "Content-Type": "application/json",
            "Content-Length": str(len(payload)),
            **(headers or {}),
        }
        if self._connection is None:
            self._connection = _UnixConnection(str(self.socket_path), timeout + 10)
        self._connection.request("POST", "/call", body=payload, headers=request_headers)
        answer = self._connection.getresponse()
        data = answer.read()
        return FnResponse(
            status=answer.status,
            headers={k.lower(): v for k, v in answer.getheaders()},
            body=data,
            call_id=call_id,
        )

    def log(self) -> str:
        """The function's log so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """Stop the server (TERM, then KILL) and close the connection. Idempotent."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)
