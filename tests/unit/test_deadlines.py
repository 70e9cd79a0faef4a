"""Every network call ends by the run's deadline, total time included (issue 12, class 4).

A peer that accepts and never answers, or answers a byte a second, defeats a per-read timeout.
Each test points one client at such a peer on loopback (a real server in a thread) with a short
deadline and checks that the call ends with the typed timeout naming the deadline. The peers
keep going for minutes; the ``finished`` guard only makes a regression fail instead of hanging
the suite (it is a liveness bound with a wide margin, not a performance assertion).
"""

from __future__ import annotations

import configparser
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from renewer import pki
from renewer.adapters.http_self_check import HttpSelfCheck, SelfCheckPolicy
from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings, translate
from renewer.deadline import cut_at
from renewer.errors import AcmeTimeout, SelfCheckFailed, TransientError
from renewer.model import KeyType, OrderRequest
from tests.unit.hostile_ca import Answer, HostileCA
from tests.unit.test_hostile_ca import issuer_for, order

DEADLINE_S = 1.0
MARGIN_S = 30.0  # far below what the peers would hold a client for (minutes)


def finished(call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` in a thread; the error it raised (None if none) once it has returned."""
    outcome: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc
        else:
            outcome["error"] = None

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE_S + MARGIN_S)
    assert not thread.is_alive(), "the call outlived its deadline by far"
    return outcome["error"]


@pytest.fixture
def ca() -> Iterator[HostileCA]:
    with HostileCA() as server:
        yield server


BAD_PEERS = {"hangs": Answer(hang=True), "trickles": Answer(trickle=0.2, body=b"{" * 500)}


@pytest.mark.parametrize(
    ("route", "peer"),
    [
        (route, peer)
        for route in ("dir", "nonce", "acct", "new-order", "finalize", "cert")
        for peer in BAD_PEERS
        if (route, peer) != ("nonce", "trickles")  # HEAD newNonce has no body to trickle
    ],
)
def test_an_acme_order_ends_by_its_deadline_whatever_the_ca_does(ca, route, peer):
    ca.answers[route] = BAD_PEERS[peer]
    issuer = issuer_for(ca)
    names = ("shop.example.com",)
    key = pki.generate_private_key(KeyType.EC_P256)
    request = OrderRequest(dns_names=names, csr_pem=pki.make_csr(key, names))

    def call() -> None:
        issuer.issue(request, deadline=time.monotonic() + DEADLINE_S)

    error = finished(call)
    assert isinstance(error, AcmeTimeout), repr(error)
    assert "deadline" in str(error)


@pytest.mark.parametrize("peer", BAD_PEERS, ids=str)
def test_renewal_info_ends_by_its_deadline(ca, peer):
    pem = str(order(issuer_for(ca)).fullchain_pem)
    ca.answers["ari"] = BAD_PEERS[peer]
    issuer = issuer_for(ca)
    error = finished(lambda: issuer.renewal_info(pem, deadline=time.monotonic() + DEADLINE_S))
    assert isinstance(error, AcmeTimeout), repr(error)


def test_renewal_info_has_a_bound_of_its_own_without_a_deadline(ca):
    # The Issuer port passes no deadline: renewalInfo is advisory and bounds itself (ARI_TIMEOUT).
    import renewer.adapters.acme_renewal_info as module  # noqa: PLC0415

    pem = str(order(issuer_for(ca)).fullchain_pem)
    ca.answers["ari"] = BAD_PEERS["trickles"]
    issuer = issuer_for(ca)
    original, module.ARI_TIMEOUT = module.ARI_TIMEOUT, DEADLINE_S
    try:
        error = finished(lambda: issuer.renewal_info(pem))
    finally:
        module.ARI_TIMEOUT = original
    assert isinstance(error, AcmeTimeout), repr(error)


# --- a raw TCP peer ---


class SlowPeer:
    """Accepts connections; ``mode`` "silent" never sends, "trickle" sends a byte at a time."""

    def __init__(self, mode: str, payload: bytes = b"HTTP/1.1 200 OK\r\nX: " + b"y" * 5000) -> None:
        self.mode = mode
        self.payload = payload
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Self:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            if self.mode == "silent":
                self._stop.wait(300)
                return
            for byte in self.payload:
                if self._stop.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return


@pytest.mark.parametrize("mode", ["silent", "trickle"])
def test_the_self_check_ends_by_the_deadline(mode):
    with SlowPeer(mode) as peer:
        check = HttpSelfCheck(
            port=peer.port,
            connect_host="127.0.0.1",
            policy=SelfCheckPolicy(tries=3, interval=0.01, timeout=60.0),
        )
        error = finished(
            lambda: check.verify(
                "shop.example.com", "t" * 43, "t.k", deadline=time.monotonic() + DEADLINE_S
            )
        )
    assert isinstance(error, SelfCheckFailed), repr(error)
    assert "within the time allowed" in str(error)


def test_the_self_check_timeout_bounds_one_fetch_in_total():
    # A trickling answer never lets a per-read timeout fire; the fetch still ends.
    with SlowPeer("trickle") as peer:
        check = HttpSelfCheck(
            port=peer.port,
            connect_host="127.0.0.1",
            policy=SelfCheckPolicy(tries=1, timeout=DEADLINE_S),
        )
        error = finished(
            lambda: check.verify(
                "shop.example.com", "t" * 43, "t.k", deadline=time.monotonic() + 600
            )
        )
    assert isinstance(error, SelfCheckFailed), repr(error)


def oci_config(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    parser = configparser.ConfigParser()
    parser["RENEWER"] = {
        "user": "ocid1.user.oc1..aaaaaaaatest",
        "tenancy": "ocid1.tenancy.oc1..aaaaaaaatest",
        "fingerprint": "11:22:33:44:55:66:77:88:99:00:aa:bb:cc:dd:ee:ff",
        "key_file": str(key_file),
        "region": "eu-frankfurt-1",
    }
    path = tmp_path / "config"
    with path.open("w") as handle:
        parser.write(handle)
    return path


@pytest.mark.parametrize("mode", ["silent", "trickle"])
def test_an_oci_call_ends_by_the_clients_deadline_retries_included(tmp_path, mode):
    with SlowPeer(mode) as peer:
        clients = OciClients(
            OciSettings(
                auth="config_file",
                config_file=str(oci_config(tmp_path)),
                profile="RENEWER",
                endpoints=dict.fromkeys(SERVICES, f"http://127.0.0.1:{peer.port}"),
                retry_attempts=4,
                retry_seconds=120,
                retry_backoff=0.01,
                timeout=(60.0, 60.0),
            ),
            deadline=time.monotonic() + DEADLINE_S,
        )

        def call() -> None:
            with translate("look up the namespace"):
                clients.object_storage.get_namespace()

        error = finished(call)
        clients.close()
    assert isinstance(error, TransientError), repr(error)
    assert "deadline" in str(error)


def test_an_oci_call_after_the_deadline_is_not_sent(tmp_path):
    with SlowPeer("silent") as peer:
        clients = OciClients(
            OciSettings(
                auth="config_file",
                config_file=str(oci_config(tmp_path)),
                profile="RENEWER",
                endpoints=dict.fromkeys(SERVICES, f"http://127.0.0.1:{peer.port}"),
            )
        )
        clients.set_deadline(time.monotonic() - 1)
        with pytest.raises(TransientError, match="not sent"), translate("read"):
            clients.object_storage.get_namespace()
        clients.close()


def test_a_cut_socket_blocked_in_recv_returns_at_once():
    # The mechanism itself: a blocked recv on a watched socket ends when the instant passes.
    with SlowPeer("silent") as peer, socket.create_connection(("127.0.0.1", peer.port)) as sock:
        sock.settimeout(300)
        with cut_at(time.monotonic() + 0.2) as cutoff:
            cutoff.watch(sock)
            error = finished(lambda: sock.recv(1) or (_ for _ in ()).throw(EOFError()))
        assert cutoff.fired
    assert isinstance(error, (EOFError, OSError)), repr(error)
