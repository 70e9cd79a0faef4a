"""An in-memory ``Issuer``: real certificates from a throwaway CA, no ACME, no network.

``FakeIssuer`` signs a leaf for each order with a test CA generated per instance (EC P-256),
with the CSR's subjectAltNames and an Authority Key Identifier, so ``pki.ari_cert_id`` works on
what it issues. It records every order (including ``replaces``), can fail the next N orders
with a given exception, answers ``renewal_info`` with a configurable value (or raises), and can
advance a ``FakeClock`` per order to simulate slow orders against the time budget.

Orders have URLs and states like a CA's: ``issue`` calls ``on_order`` right after the order
exists; ``crash_next`` makes the next orders stop (raise) after ``on_order`` — with the order
still pending, or valid with its certificate issued and never returned — as a killed run
would; ``resume`` finishes such an order (the same certificate for a valid one) or answers None
for an unknown, invalid (``invalidate``) or foreign one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from renewer import pki
from renewer.clock import Clock
from renewer.errors import AcmeProtocolError
from renewer.model import IssuedCertificate, OrderRequest, RenewalInfo
from renewer.ports import OrderCreated

DIRECTORY_URL = "https://acme.test/directory"
ACCOUNT_URL = "https://acme.test/acme/acct/1"
CA_NAME = "Fake Test Root"


@dataclass
class _Order:
    request: OrderRequest
    account_url: str
    issued: IssuedCertificate | None = None
    invalid: bool = False


class FakeIssuer:
    """``Issuer`` port in memory. Thread-safe.

    ``orders`` lists every ``issue`` call in order (failed ones too); ``issued`` the
    certificates returned; ``renewal_info_calls`` the serials ARI was asked about.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        lifetime: timedelta = timedelta(days=90),
        account_url: str = ACCOUNT_URL,
        issue_seconds: float = 0.0,
    ) -> None:
        self.lifetime = lifetime
        self.account_url = account_url
        self.issue_seconds = issue_seconds
        self.renewal_info_answer: RenewalInfo | None = None
        self.renewal_info_error: BaseException | None = None
        self.orders: list[OrderRequest] = []
        self.issued: list[IssuedCertificate] = []
        self.renewal_info_deadlines: list[float | None] = []
        self.renewal_info_calls: list[str] = []
        self.resumes: list[str] = []  # order URLs ``resume`` was asked about
        self._clock = clock
        self._failures: list[BaseException] = []
        self._crashes: list[tuple[str, BaseException]] = []
        self._orders: dict[str, _Order] = {}
        self._lock = threading.Lock()
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_cert = self._make_ca()

    @property
    def ca_pem(self) -> str:
        """The test CA's certificate (PEM)."""
        return self._ca_cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def fail_next(self, count: int, error: BaseException) -> None:
        """Make the next ``count`` orders raise ``error``."""
        with self._lock:
            self._failures.extend([error] * count)

    def crash_next(self, error: BaseException, *, after: str = "order") -> None:
        """Make the next order raise ``error`` after ``on_order``: ``after="order"`` leaves
        it pending, ``after="certificate"`` leaves it valid with its certificate issued."""
        if after not in ("order", "certificate"):
            msg = f"after must be 'order' or 'certificate', not {after!r}"
            raise ValueError(msg)
        with self._lock:
            self._crashes.append((after, error))

    def invalidate(self, order_url: str) -> None:
        """Mark an order invalid (failed or expired at the CA)."""
        with self._lock:
            self._orders[order_url].invalid = True

    def issue(
        self, request: OrderRequest, *, deadline: float, on_order: OrderCreated | None = None
    ) -> IssuedCertificate:
        """See :class:`renewer.ports.Issuer`: sign a leaf for the CSR, or raise a queued error."""
        del deadline
        with self._lock:
            self.orders.append(request)
            number = len(self.orders)
            failure = self._failures.pop(0) if self._failures else None
            crash = self._crashes.pop(0) if self._crashes and failure is None else None
        if self.issue_seconds:
            self._clock.sleep(self.issue_seconds)
        if failure is not None:
            raise failure
        order_url = f"https://acme.test/acme/order/{number}"
        with self._lock:
            self._orders[order_url] = _Order(request, self.account_url)
        if on_order is not None:
            on_order(order_url, self.account_url)
        if crash is not None and crash[0] == "order":
            raise crash[1]
        issued = self._finish(order_url, request)
        if crash is not None:
            raise crash[1]
        return issued

    def resume(
        self, order_url: str, request: OrderRequest, *, account_url: str, deadline: float
    ) -> IssuedCertificate | None:
        """See :class:`renewer.ports.Issuer`: finish a known order of this account, or None."""
        del deadline
        with self._lock:
            self.resumes.append(order_url)
            order = self._orders.get(order_url)
        if order is None or order.invalid or account_url != order.account_url:
            return None
        if order.account_url != self.account_url:
            return None
        if order.issued is not None:
            return order.issued
        return self._finish(order_url, request)

    def _finish(self, order_url: str, request: OrderRequest) -> IssuedCertificate:
        leaf = self._sign(request)
        leaf_pem = leaf.public_bytes(serialization.Encoding.PEM).decode("ascii")
        issued = IssuedCertificate(
            fullchain_pem=leaf_pem + self.ca_pem,
            order_url=order_url,
            account_url=self.account_url,
            serial_hex=pki.serial_hex(leaf),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            issuer=CA_NAME,
        )
        with self._lock:
            self._orders[order_url].issued = issued
            self.issued.append(issued)
        return issued

    def renewal_info(self, cert_pem: str, *, deadline: float | None = None) -> RenewalInfo | None:
        """See :class:`renewer.ports.Issuer`: the configured answer, or the configured error."""
        serial = pki.serial_hex(pki.split_chain(cert_pem)[0])
        with self._lock:
            self.renewal_info_calls.append(serial)
            self.renewal_info_deadlines.append(deadline)
        if self.renewal_info_error is not None:
            raise self.renewal_info_error
        return self.renewal_info_answer

    def _sign(self, request: OrderRequest) -> x509.Certificate:
        csr = x509.load_pem_x509_csr(request.csr_pem)
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        requested = names.value.get_values_for_type(x509.DNSName)
        if sorted(requested) != sorted(request.dns_names) or not csr.is_signature_valid:
            msg = "the CSR does not match the order's identifiers"
            raise AcmeProtocolError(msg, problem_type="badCSR")
        not_before = self._clock.now().replace(microsecond=0)
        return (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self._ca_cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + self.lifetime)
            .add_extension(x509.SubjectAlternativeName(names.value), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()),
                critical=False,
            )
            .sign(self._ca_key, hashes.SHA256())
        )

    def _make_ca(self) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        start = self._clock.now().replace(microsecond=0) - timedelta(days=1)
        public_key = self._ca_key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
