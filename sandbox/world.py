"""A sandbox "world" on loopback: the OCI emulator, a token backend and Pebble, wired like OCI.

The path a CA's validation takes here is the production one (ARCHITECTURE §5)::

    Pebble VA -> emulated LB :80 -> routing policy (/.well-known/acme-challenge/)
              -> backend set acme-tokens -> SandboxTokenBackend -> emulated Object Storage

and a TLS handshake with the emulated LB :443 shows what the renewer deployed. Used by the
end-to-end tests and, later, the demo::

    with SandboxWorld(tmp_path, certificates=["shop.example.com"]) as world:
        report = world.service().run(budget_s=120)
        world.served_certificate("shop.example.com")

Every process, thread and socket it starts is stopped on exit, also when starting fails; the
resource-principal environment it puts into ``os.environ`` is restored.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
import ssl
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import oci
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from renewer.adapters.oci_clients import SERVICES, OciSettings
from renewer.renewal import RenewalService
from renewer.settings import parse_config
from renewer.wiring import build_service
from sandbox.ca_proxy import CaProxy
from sandbox.net import free_port
from sandbox.oci_emulator.app import Tenancy, build_emulator
from sandbox.oci_emulator.credentials import api_key_config, resource_principal_env
from sandbox.oci_emulator.server import Emulator
from sandbox.oci_emulator.timing import TimingProfile
from sandbox.pebble import Pebble, PebbleOptions

TENANCY = "ocid1.tenancy.oc1..sandboxworld"
COMPARTMENT = "ocid1.compartment.oc1..sandboxapps"
NAMESPACE = "sandboxns"
VAULT_ID = "ocid1.vault.oc1.phx.sandboxvault"
KEY_ID = "ocid1.key.oc1.phx.sandboxkey"
RSA_KEY_ID = "ocid1.key.oc1.phx.sandboxrsakey"
DISABLED_KEY_ID = "ocid1.key.oc1.phx.sandboxdisabledkey"
OTHER_VAULT_ID = "ocid1.vault.oc1.phx.othervault"
OTHER_VAULT_KEY_ID = "ocid1.key.oc1.phx.othervaultkey"
LB_ID = "ocid1.loadbalancer.oc1.phx.sandboxlb"
SERVICE_CERTIFICATE_ID = "ocid1.certificate.oc1.phx.sandboxcert"
TOPIC_ID = "ocid1.onstopic.oc1.phx.sandboxtopic"  # operators' Notifications topic
METRICS_NAMESPACE = "acme_renewer"
CHALLENGE_BUCKET = "acme-challenges"
STATE_BUCKET = "acme-state"
HTTPS_LISTENER = "https"
SERVICE_LISTENER = "https-service"
SEED_BUNDLE = "seed-expiring"
DNS_ZONE_ID = "ocid1.dns-zone.oc1..sandboxzone"  # the zone dns-01 writes to (emulated OCI DNS)
# Another zone of the tenancy, which the renewer may not write (its policy names DNS_ZONE_ID).
OTHER_DNS_ZONE_ID = "ocid1.dns-zone.oc1..sandboxotherzone"
OTHER_DNS_ZONE_NAME = "example.net"
CHALLENGE_PATH = "/.well-known/acme-challenge/"
_RP_ENV_KEYS = (
    "OCI_RESOURCE_PRINCIPAL_VERSION",
    "OCI_RESOURCE_PRINCIPAL_RPST",
    "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM",
    "OCI_RESOURCE_PRINCIPAL_REGION",
)


# --------------------------------------------------------------------------- token backend


class SandboxTokenBackend:
    """The production token server (:mod:`tokenserver`) as the LB's :80 challenge backend.

    ``GET /.well-known/acme-challenge/<token>`` answers the object
    ``.well-known/acme-challenge/<token>`` of the challenge bucket, read through the real
    ``oci`` SDK with the token server's own resource-principal credentials (its dynamic group
    may only read that bucket). The socket is bound on construction, so its port can be seeded
    into the load balancer's backend set before the emulator starts; :meth:`start` serves.
    ``access_log`` collects the server's JSON access log lines.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self.access_log = io.StringIO()
        self._server: Any = None

    def start(
        self, *, endpoint: str, rp_env: Mapping[str, str], namespace: str, bucket: str
    ) -> None:
        """Serve ``bucket`` of the emulator at ``endpoint``, signing with ``rp_env``."""
        from tokenserver import ObjectStorageTokens, Settings, TokenServer  # noqa: PLC0415

        signer = oci.auth.signers.EphemeralResourcePrincipalSigner(
            session_token=rp_env["OCI_RESOURCE_PRINCIPAL_RPST"],
            private_key=rp_env["OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM"],
            region=rp_env["OCI_RESOURCE_PRINCIPAL_REGION"],
        )
        client = oci.object_storage.ObjectStorageClient(
            {},
            signer=signer,
            service_endpoint=endpoint,
            retry_strategy=oci.retry.NoneRetryStrategy(),
            circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
            timeout=(5, 10),
        )
        settings = Settings(
            bucket=bucket,
            namespace=namespace,
            host="127.0.0.1",
            port=self.port,
            object_storage_endpoint=endpoint,
        )
        self._server = TokenServer(
            settings,
            reader=ObjectStorageTokens(client, bucket=bucket, namespace=namespace).get,
            access_log=self.access_log,
            sock=self._socket,
        )
        self._server.start()

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self._socket.close()


# --------------------------------------------------------------------------- seed material


@dataclass(frozen=True, slots=True)
class SeedCertificate:
    """An expiring self-signed certificate and its key (PEM), what the listeners start with."""

    certificate_pem: str
    private_key_pem: str = ""

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate."""
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())


def self_signed(
    names: Sequence[str], *, days_left: float = 5, rsa_key: bool = False
) -> SeedCertificate:
    """A self-signed certificate for ``names`` expiring in ``days_left`` days.

    EC P-256, or RSA 2048 with ``rsa_key`` (what a listener at OCI's default cipher suite, which
    has RSA ciphers only, can serve).
    """
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    start = datetime.now(UTC) - timedelta(days=85)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(datetime.now(UTC) + timedelta(days=days_left))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)  # noqa: FBT003 - cryptography's positional "critical"
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return SeedCertificate(certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem)


# --------------------------------------------------------------------------- the world


class SandboxWorld:
    """The emulator, the token backend and Pebble, started in that order. A context manager.

    Args:
        workdir: where state, credentials, Pebble's config and log go.
        certificates: the DNS names of the managed certificate (the first is its common name).
        certificate_name: the managed certificate's configuration name.
        service_certificate: also seed a Certificates-service certificate, an HTTPS listener
            ``https-service`` (:8443) that uses it through ``certificateIds``, and target it.
        pebble_options: Pebble knobs; ``http_port`` is always the data plane's LB :80.
        work_request_seconds: how long each emulated LB work request takes (ignored when
            ``timing`` is given: the profile decides).
        timing: the emulator's :class:`~sandbox.oci_emulator.timing.TimingProfile` (e.g.
            ``TimingProfile.realistic(scale=0.01)``); None keeps the fast sandbox.
        authorization: enforce the fixture's least-privilege IAM policies in the emulator.
        policies: the emulator's IAM policies instead of the fixture's (``_policies()``).
        https_at_oci_defaults: leave the HTTPS listener's ``sslConfiguration`` at OCI's defaults
            (no ``cipherSuiteName``: ``oci-default-ssl-cipher-suite-v1``, RSA ciphers only; no
            ``protocols``: TLSv1.2 only) and seed it with an RSA certificate, which that suite
            serves; False names ``oci-modern-ssl-cipher-suite-v1`` and TLSv1.2 + TLSv1.3.
        challenge_mode: ``"token-server"`` (the :80 listener routes challenges to the token
            backend) or ``"redirect"`` (issue 5's redirect mode: a rule set on the :80 listener
            redirects them to a read-only PAR on the challenge bucket; see :class:`RedirectMode`).
        port80: the shape of the load balancer's port-80 listener (issue 13): ``"routed"``
            (the challenge route is already in place, the default), or one the renewer must
            route itself (the configuration then names ``oci.challengeBackendSet``):
            ``"forward"`` (everything to the application), ``"redirect"`` (a rule set
            redirects everything to HTTPS), ``"own-policy"`` (the listener has its own routing
            policy), ``"none"`` (no port-80 listener). See :data:`PORT80_SHAPES`.
        private: the load balancer is private (``isPrivate``): http-01 cannot reach it.
        challenge: the certificate's ``challenge`` setting (``http-01``, ``dns-persist-01``,
            ``dns-01``); Pebble resolves the DNS challenges' TXT records through challtestsrv
            (:meth:`Pebble.set_txt`; dns-01's records are mirrored from the emulated zone).
        private_lb: the load balancer is private (``isPrivate``) and has no :80 listener, so
            no http-01 path exists; Pebble's http-01 port is one where nothing listens.
        second_ca: also start a second Pebble (other roots, other listener CA; issue 17) and
            put a :class:`~sandbox.ca_proxy.CaProxy` in front of each; the configuration then
            lists both CAs (``acme.cas``: the first Pebble first, through its proxy), and
            ``trust_bundle`` holds both CAs' listener CA and roots. ``ca_proxies[0].fault``
            makes the first CA fail on its side.

    Attributes after start: ``emulator``, ``tenancy``, ``pebble``, ``token_backend``,
    ``redirect`` (a :class:`RedirectMode`, in redirect mode only), and with ``second_ca``
    ``pebble2`` and ``ca_proxies`` (first CA's, second CA's).

    """

    def __init__(
        self,
        workdir: Path,
        *,
        certificates: Sequence[str] = ("shop.example.com",),
        certificate_name: str = "shop",
        service_certificate: bool = False,
        pebble_options: PebbleOptions | None = None,
        work_request_seconds: float = 0.05,
        authorization: bool = True,
        challenge_mode: str = "token-server",
        policies: list[dict[str, Any]] | None = None,
        timing: TimingProfile | None = None,
        port80: str = "routed",
        private: bool = False,
        challenge: str = "http-01",
        private_lb: bool = False,
        https_at_oci_defaults: bool = False,
        second_ca: bool = False,
    ) -> None:
        if port80 not in PORT80_SHAPES:
            msg = f"port80 must be one of {', '.join(PORT80_SHAPES)}"
            raise ValueError(msg)
        self.port80 = port80
        self.private = private or private_lb
        # Where the data plane serves the LB's ports 80 and 443, fixed before start: Pebble
        # must know port 80 before a renewer creates that listener (shape "none"), and the
        # redirect-to-HTTPS rule names 443's stand-in (shape "redirect").
        self.local_ports = {80: free_port(), 443: free_port()}
        if not certificates:
            msg = "a world needs at least one DNS name"
            raise ValueError(msg)
        if challenge_mode not in CHALLENGE_MODES:
            msg = f"challenge_mode must be one of {', '.join(CHALLENGE_MODES)}"
            raise ValueError(msg)
        self.challenge_mode = challenge_mode
        self.challenge = challenge
        self.private_lb = private_lb
        self.redirect: RedirectMode | None = None
        self.workdir = workdir
        self.names = tuple(certificates)
        self.certificate_name = certificate_name
        self.with_service_certificate = service_certificate
        self.pebble_options = pebble_options or PebbleOptions()
        self.timing = timing
        # The renewer's first poll of a work request: the profile's shortest one, scaled.
        self.work_request_seconds = (
            work_request_seconds
            if timing is None
            else timing.durations.get("lbWorkRequestSeconds", (0.2, 0.2))[0] * timing.scale
        )
        self.authorization = authorization
        self.policies = policies  # None: _policies(); tests/terraform passes Terraform's
        self.https_at_oci_defaults = https_at_oci_defaults
        self.seed = self_signed(self.names, rsa_key=https_at_oci_defaults)
        self._stack = ExitStack()
        self._emulator: Emulator | None = None
        self._tenancy: Tenancy | None = None
        self._pebble: Pebble | None = None
        self.trust_bundle = workdir / "trust.pem"  # written at start: see _start
        self.second_ca = second_ca
        self.pebble2: Pebble | None = None
        self.ca_proxies: list[CaProxy] = []
        self.token_backend: SandboxTokenBackend | None = None
        self._rp_env: dict[str, str] = {}
        self._saved_env: dict[str, str | None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stack.callback(self._restore_env)
        backend = SandboxTokenBackend()  # bound now: its port goes into the fixture
        self._stack.callback(backend.stop)
        self.token_backend = backend
        emulator, tenancy = build_emulator(
            fixture=self.fixture(backend.port), state_path=str(self.workdir / "emulator.json")
        )
        self._stack.callback(emulator.stop)
        emulator.start()
        self._emulator, self._tenancy = emulator, tenancy
        if self.challenge_mode == "redirect":
            self.redirect = RedirectMode.install(self)
        self._rp_env = resource_principal_env(
            emulator, tenancy.principals["renewer"], self.workdir / "credentials" / "renewer"
        )
        backend.start(
            endpoint=emulator.endpoint,
            rp_env=resource_principal_env(
                emulator,
                tenancy.principals["token-server"],
                self.workdir / "credentials" / "token-server",
            ),
            namespace=NAMESPACE,
            bucket=CHALLENGE_BUCKET,
        )
        options = dataclasses.replace(self.pebble_options, http_port=self.local_ports[80])
        self._pebble = self._stack.enter_context(Pebble(self.workdir / "pebble", options))
        self._mirror_dns_zones(emulator, self._pebble)
        # What the renewer trusts here, as the system store holds both in production: the CA of
        # Pebble's HTTPS listener (the ACME client's TLS) and Pebble's issuing roots, random per
        # start (VERIFY checks that a listener's chain leads to one of them).
        pems = [self._pebble.ca_bundle.read_text(), *self._pebble.root_pems()]
        if self.second_ca:
            self.pebble2 = self._stack.enter_context(Pebble(self.workdir / "pebble2", options))
            pems += [self.pebble2.ca_bundle.read_text(), *self.pebble2.root_pems()]
            self.ca_proxies = [
                self._stack.enter_context(CaProxy(self._pebble)),
                self._stack.enter_context(CaProxy(self.pebble2)),
            ]
        self.trust_bundle.write_text("".join(p if p.endswith("\n") else p + "\n" for p in pems))

    @staticmethod
    def _mirror_dns_zones(emulator: Emulator, pebble: Pebble) -> None:
        """Serve the emulated zones' TXT records to Pebble's VA, now and after every change.

        OCI's authoritative nameservers answer what the zone holds; here pebble-challtestsrv is
        Pebble's only DNS server, so each TXT set the DNS service reports goes there.
        """
        dns = emulator.services.get("dns")
        if dns is None:
            return
        dns.add_listener(lambda _zone, domain, values: pebble.replace_txt(domain, values))  # type: ignore[attr-defined]
        for zone_id in (DNS_ZONE_ID, OTHER_DNS_ZONE_ID):
            domains = {r["domain"] for r in dns.records(zone_id) if r["rtype"] == "TXT"}  # type: ignore[attr-defined]
            for domain in sorted(domains):
                pebble.replace_txt(domain, dns.txt_values(zone_id, domain))  # type: ignore[attr-defined]

    @property
    def dns_zone_name(self) -> str:
        """The name of the zone dns-01 writes to: the last two labels of the first name."""
        base = self.names[0].lower().removeprefix("*.")
        return ".".join(base.split(".")[-2:])

    @property
    def emulator(self) -> Emulator:
        """The running OCI emulator."""
        if self._emulator is None:
            msg = "the world is not started"
            raise RuntimeError(msg)
        return self._emulator

    @property
    def tenancy(self) -> Tenancy:
        """The fixture's identities."""
        if self._tenancy is None:
            msg = "the world is not started"
            raise RuntimeError(msg)
        return self._tenancy

    @property
    def pebble(self) -> Pebble:
        """The running Pebble."""
        if self._pebble is None:
            msg = "the world is not started"
            raise RuntimeError(msg)
        return self._pebble

    # ------------------------------------------------------------------ the fixture

    def fixture(self, token_port: int) -> dict[str, Any]:
        """The emulator fixture: identities, policies, buckets, vault, LB (and a CS cert)."""
        fixture: dict[str, Any] = {
            "tenancy": TENANCY,
            "namespace": NAMESPACE,
            "compartments": [{"name": "apps", "id": COMPARTMENT}],
            "principals": [
                {
                    "name": "operator",
                    "kind": "user",
                    "id": "ocid1.user.oc1..sandboxoperator",
                    "groups": ["Admins"],
                },
                {
                    "name": "renewer",
                    "kind": "resource",
                    "id": "ocid1.fnfunc.oc1.phx.sandboxrenewer",
                    "compartment": COMPARTMENT,
                    "groups": ["renewer-dg"],
                },
                {
                    "name": "token-server",
                    "kind": "resource",
                    "id": "ocid1.computecontainerinstance.oc1.phx.sandboxtokens",
                    "compartment": COMPARTMENT,
                    "groups": ["token-server-dg"],
                },
            ],
            "authorization": self.authorization,
            "policies": _policies() if self.policies is None else self.policies,
            "buckets": [
                {"name": CHALLENGE_BUCKET, "compartment": COMPARTMENT},
                {"name": STATE_BUCKET, "compartment": COMPARTMENT},
            ],
            "vaults": [
                {
                    "id": VAULT_ID,
                    "compartment": COMPARTMENT,
                    "display_name": "sandbox-vault",
                    "keys": [
                        {"id": KEY_ID, "algorithm": "AES"},
                        # Keys a mistaken configuration may name (tests of rule 6).
                        {"id": RSA_KEY_ID, "algorithm": "RSA"},
                        {"id": DISABLED_KEY_ID, "algorithm": "AES", "state": "DISABLED"},
                    ],
                },
                {
                    "id": OTHER_VAULT_ID,
                    "compartment": COMPARTMENT,
                    "display_name": "another-vault",
                    "keys": [{"id": OTHER_VAULT_KEY_ID, "algorithm": "AES"}],
                },
            ],
            "load_balancers": [self._load_balancer(token_port)],
            "dataPlanePorts": {LB_ID: {str(p): local for p, local in self.local_ports.items()}},
            "topics": [{"id": TOPIC_ID, "name": "acme-renewer", "compartment": COMPARTMENT}],
            "zones": [
                {"id": DNS_ZONE_ID, "name": self.dns_zone_name, "compartment": COMPARTMENT},
                {"id": OTHER_DNS_ZONE_ID, "name": OTHER_DNS_ZONE_NAME, "compartment": COMPARTMENT},
            ],
        }
        if self.timing is not None:
            fixture["timing"] = self.timing.to_fixture()
        if self.with_service_certificate:
            fixture["certificates"] = [
                {
                    "id": SERVICE_CERTIFICATE_ID,
                    "name": f"{self.certificate_name}-service",
                    "compartment": COMPARTMENT,
                    "certificatePem": self.seed.certificate_pem,
                    "certChainPem": self.seed.certificate_pem,
                    "privateKeyPem": self.seed.private_key_pem,
                }
            ]
        return fixture

    def _load_balancer(self, token_port: int) -> dict[str, Any]:
        """One LB: HTTP :80 routing challenges to ``acme-tokens``, HTTPS :443 on the seed."""
        acme_rule = {
            "name": "acme",
            "condition": f"any(http.request.url.path sw (i '{CHALLENGE_PATH}'))",
            "actions": [{"name": "FORWARD_TO_BACKENDSET", "backendSetName": "acme-tokens"}],
        }
        listeners: dict[str, Any] = {
            "http": {
                "port": 80,
                "protocol": "HTTP",
                "defaultBackendSetName": "app",
                "routingPolicyName": "acme-routing",
            },
            HTTPS_LISTENER: {
                "port": 443,
                "protocol": "HTTP",
                "defaultBackendSetName": "app",
                "hostnameNames": ["site"],
                "ruleSetNames": ["security-headers"],
                "routingPolicyName": "acme-routing",
                "connectionConfiguration": {"idleTimeout": 120},
                "sslConfiguration": {"certificateName": SEED_BUNDLE}
                if self.https_at_oci_defaults
                else {
                    "certificateName": SEED_BUNDLE,
                    "protocols": ["TLSv1.2", "TLSv1.3"],
                    "cipherSuiteName": "oci-modern-ssl-cipher-suite-v1",
                    "serverOrderPreference": "ENABLED",
                },
            },
        }
        rule_sets: dict[str, Any] = {}
        routing = {"acme-routing": {"conditionLanguageVersion": "V1", "rules": [acme_rule]}}
        if self.port80 != "routed":
            # Shapes the renewer routes itself: no challenge routing anywhere yet.
            del listeners[HTTPS_LISTENER]["routingPolicyName"]
            del listeners["http"]["routingPolicyName"]
            routing = {}
        if self.port80 == "redirect":
            listeners["http"]["ruleSetNames"] = [HTTPS_REDIRECT_RULE_SET]
            rule_sets[HTTPS_REDIRECT_RULE_SET] = {"items": [self.https_redirect_rule()]}
        elif self.port80 == "own-policy":
            listeners["http"]["routingPolicyName"] = OWN_POLICY
            routing = {OWN_POLICY: {"conditionLanguageVersion": "V1", "rules": own_rules()}}
        elif self.port80 == "none":
            del listeners["http"]
        if self.private_lb:
            listeners.pop("http", None)  # an internal LB: nothing the CA could reach on port 80
        if self.with_service_certificate:
            listeners[SERVICE_LISTENER] = {
                "port": 8443,
                "protocol": "HTTP",
                "defaultBackendSetName": "app",
                "sslConfiguration": {
                    "certificateIds": [SERVICE_CERTIFICATE_ID],
                    "protocols": ["TLSv1.2", "TLSv1.3"],
                    # ECDSA and RSA ciphers: it serves the EC seed before the renewal and the
                    # RSA certificate keyType auto orders for a Certificates-service target.
                    "cipherSuiteName": "oci-tls-12-13-wider-ssl-cipher-suite-v1",
                },
            }
        return {
            "id": LB_ID,
            "compartmentId": COMPARTMENT,
            "displayName": "sandbox-lb",
            "isPrivate": self.private,
            **({} if self.timing else {"workRequestSeconds": self.work_request_seconds}),
            "listeners": listeners,
            "certificates": {SEED_BUNDLE: {"publicCertificate": self.seed.certificate_pem}},
            "privateKeys": {SEED_BUNDLE: self.seed.private_key_pem},
            "backendSets": {
                # Nothing listens there: the application is not part of this world.
                "app": {"backends": [{"ipAddress": "127.0.0.1", "port": free_port()}]},
                "acme-tokens": {"backends": [{"ipAddress": "127.0.0.1", "port": token_port}]},
            },
            "hostnames": {"site": {"hostname": self.names[0]}},
            "ruleSets": {
                **rule_sets,
                "security-headers": {
                    "items": [
                        {
                            "action": "ADD_HTTP_RESPONSE_HEADER",
                            "header": "Strict-Transport-Security",
                            "value": "max-age=31536000",
                        }
                    ]
                },
            },
            "routingPolicies": routing,
        }

    def https_redirect_rule(self) -> dict[str, Any]:
        """Shape "redirect": everything on :80 to HTTPS, as users write it.

        In a tenancy the port is 443; here it is the loopback port standing in for 443
        (``local_ports[443]``): Pebble follows a redirect to any port, where Let's Encrypt
        follows only to 80/443, and the renewer's self-check follows this one only because
        :meth:`self_check_resolve` lists it (docs/oci-emulator.md).
        """
        return {
            "action": "REDIRECT",
            "responseCode": 301,
            "conditions": [
                {"attributeName": "PATH", "attributeValue": "/", "operator": "PREFIX_MATCH"}
            ],
            "redirectUri": {
                "protocol": "HTTPS",
                "host": "{host}",
                "port": self.local_ports[443],
                "path": "{path}",
                "query": "{query}",
            },
        }

    def self_check_resolve(self) -> dict[tuple[str, int], tuple[str, int]]:
        """The self-check's stand-ins: redirect mode's Object Storage, shape b's HTTPS port."""
        resolve = self.redirect.self_check_resolve() if self.redirect is not None else {}
        if self.port80 == "redirect":
            local = ("127.0.0.1", self.local_ports[443])
            resolve.update({(name, self.local_ports[443]): local for name in self.names})
        return resolve

    # ------------------------------------------------------------------ what the renewer gets

    def config_document(self) -> dict[str, Any]:
        """A valid renewer configuration document for this world (a fresh dict each call)."""
        targets: list[dict[str, Any]] = [{"loadBalancerId": LB_ID, "listeners": [HTTPS_LISTENER]}]
        if self.with_service_certificate:
            targets.append({"certificateId": SERVICE_CERTIFICATE_ID})
        certificate: dict[str, Any] = {
            "name": self.certificate_name,
            "dnsNames": list(self.names),
            "targets": targets,
        }
        if self.challenge == "dns-01":
            certificate["challenge"] = {"type": "dns-01", "zoneId": DNS_ZONE_ID}
        elif self.challenge != "http-01":
            certificate["challenge"] = self.challenge
        ca: dict[str, Any] = (
            {"cas": [proxy.directory_url for proxy in self.ca_proxies]}
            if self.ca_proxies
            else {"directoryUrl": self.pebble.directory_url}
        )
        return {
            "acme": {
                **ca,
                "contact": ["ops@example.com"],
                "termsOfServiceAgreed": True,
                "selfCheck": True,
            },
            "oci": {
                "compartmentId": COMPARTMENT,
                "vaultId": VAULT_ID,
                "keyId": KEY_ID,
                "challengeBucket": CHALLENGE_BUCKET,
                "stateBucket": STATE_BUCKET,
                "namePrefix": "acme",
                **({} if self.port80 == "routed" else {"challengeBackendSet": TOKEN_BACKEND_SET}),
            },
            "renewal": {"retention": 10, "keepPreviousBundles": 1, "verifyTls": True},
            "certificates": [certificate],
        }

    def oci_settings(self) -> OciSettings:
        """Resource-principal settings with every endpoint at the emulator.

        Puts the renewer's ``OCI_RESOURCE_PRINCIPAL_*`` variables into ``os.environ`` (as in a
        function container); the previous values come back when the world stops.
        """
        if self._saved_env is None:
            self._saved_env = {key: os.environ.get(key) for key in _RP_ENV_KEYS}
        os.environ.update(self._rp_env)
        return OciSettings(
            auth="resource_principal",
            endpoints=dict.fromkeys(SERVICES, self.emulator.endpoint),
            retry_attempts=3,
            retry_seconds=10.0,
            retry_backoff=0.01,
            timeout=(5.0, 30.0),
        )

    def service(self, **overrides: Any) -> RenewalService:  # noqa: ANN401 - build_service's keywords
        """:func:`renewer.wiring.build_service` for this world; keywords override the defaults.

        ``config`` (a :class:`~renewer.settings.Config`) may be overridden too.
        """
        options: dict[str, Any] = {
            "config": parse_config(self.config_document()),
            "oci": self.oci_settings(),
            "holder": f"sandbox-{uuid.uuid4().hex[:12]}",
            "ca_bundle": str(self.trust_bundle),
            "self_check_port": self.local_ports[80],
            "self_check_connect_host": "127.0.0.1",
            "tls_address_override": self._address_override,
            "step_budget": 30.0,
            "lb_poll_interval": max(self.work_request_seconds, 0.01),
            "self_check_waits": (),  # a failed self-check fails the run at once here
        }
        resolve = self.self_check_resolve()
        if resolve:
            options["self_check_resolve"] = resolve
        options.update(overrides)
        config = options.pop("config")
        return build_service(config, **options)

    def function_environment(self, document: dict[str, Any] | None = None) -> dict[str, str]:
        """The environment a function container gets here (see :mod:`renewer.environment`).

        The configuration inline, the renewer's resource principal, the emulator as every OCI
        endpoint, Pebble's CA, and where loopback puts port 80 and the listeners.
        """
        listener_ports = self.emulator.services["loadbalancer"].port_map()  # type: ignore[attr-defined]
        loopback: dict[str, Any] = {
            "selfCheckPort": self.local_ports[80],
            "selfCheckHost": "127.0.0.1",
            "listenerPorts": {
                lb: {str(port): int(local) for port, local in ports.items()}
                for lb, ports in listener_ports.items()
            },
        }
        if self.self_check_resolve():
            loopback["resolve"] = {
                f"{host}:{port}": f"{target_host}:{target_port}"
                for (host, port), (target_host, target_port) in self.self_check_resolve().items()
            }
        return {
            **self._rp_env,
            "RENEWER_CONFIG": json.dumps(document or self.config_document()),
            "RENEWER_OCI_ENDPOINT": self.emulator.endpoint,
            "RENEWER_ACME_CA_BUNDLE": str(self.trust_bundle),
            "RENEWER_LOOPBACK": json.dumps(loopback),
        }

    def _address_override(self, lb_id: str, port: int) -> tuple[str, int] | None:
        local = self.emulator.services["loadbalancer"].port_map().get(lb_id, {}).get(port)  # type: ignore[attr-defined]
        return None if local is None else ("127.0.0.1", int(local))

    # ------------------------------------------------------------------ observing the world

    def lb_port(self, listener_port: int) -> int:
        """The loopback port where the data plane serves the LB's ``listener_port``."""
        address = self._address_override(LB_ID, listener_port)
        if address is None:
            msg = f"the load balancer has no listener on port {listener_port}"
            raise LookupError(msg)
        return address[1]

    def served_certificate(self, name: str, *, port: int = 443) -> x509.Certificate:
        """The leaf the emulated LB's ``port`` presents for SNI ``name`` (no verification)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # we inspect what is served, trusted or not
        with (
            socket.create_connection(("127.0.0.1", self.lb_port(port)), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        if der is None:
            msg = f"LB port {port} presented no certificate for {name}"
            raise RuntimeError(msg)
        return x509.load_der_x509_certificate(der)

    def operator_config(self) -> dict[str, str]:
        """An OCI SDK config for the ``operator`` (Admins), to inspect the emulated tenancy."""
        return api_key_config(
            self.emulator,
            self.tenancy.principals["operator"],
            self.workdir / "credentials" / f"operator-{uuid.uuid4().hex[:6]}",
        )

    def pebble_log(self) -> str:
        """Pebble's whole log so far."""
        return self.pebble.log_path.read_text(errors="replace")

    def _restore_env(self) -> None:
        if self._saved_env is None:
            return
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = None


def _policies() -> list[dict[str, Any]]:
    """Least-privilege statements, as the product's Terraform writes them."""
    buckets = (
        f"any {{target.bucket.name = '{CHALLENGE_BUCKET}', target.bucket.name = '{STATE_BUCKET}'}}"
    )
    return [
        {
            "name": "renewer",
            "statements": [
                "Allow dynamic-group renewer-dg to manage objects in compartment apps"
                f" where {buckets}",
                "Allow dynamic-group renewer-dg to manage secret-family in compartment apps",
                "Allow dynamic-group renewer-dg to use vaults in compartment apps",
                "Allow dynamic-group renewer-dg to use keys in compartment apps",
                "Allow dynamic-group renewer-dg to use load-balancers in compartment apps",
                "Allow dynamic-group renewer-dg to manage leaf-certificate-family"
                " in compartment apps",
                "Allow dynamic-group renewer-dg to use metrics in compartment apps"
                f" where target.metrics.namespace = '{METRICS_NAMESPACE}'",
                "Allow dynamic-group renewer-dg to use ons-topics in compartment apps",
                # dns-01: the TXT records of one zone, as terraform/documents.tf writes it
                "Allow dynamic-group renewer-dg to use dns-records in compartment apps"
                f" where target.dns-zone.id = '{DNS_ZONE_ID}'",
            ],
        },
        {
            "name": "token-server",
            "statements": [
                "Allow dynamic-group token-server-dg to read objects in compartment apps"
                f" where target.bucket.name = '{CHALLENGE_BUCKET}'",
            ],
        },
        {
            "name": "admins",
            "statements": ["Allow group Admins to manage all-resources in tenancy"],
        },
    ]


# --------------------------------------------------------------------------- redirect mode
# Issue 5's alternative to the token backend, set up as an operator (or Terraform) would, through
# the real SDK: a read-only PAR on the challenge bucket, a rule set redirecting the challenge path
# to it, and the :80 listener switched from the routing policy to that rule set. The sandbox
# assumption (docs/oci-emulator.md, "Redirect mode in the sandbox"): Object Storage answers on the
# emulator's port over plain HTTP, so the redirect names that port; Pebble resolves every name to
# 127.0.0.1 and follows redirects to any port, where Let's Encrypt allows only 80/443.

CHALLENGE_MODES = ("token-server", "redirect")
PORT80_SHAPES = ("routed", "forward", "redirect", "own-policy", "none")
TOKEN_BACKEND_SET = "acme-tokens"  # noqa: S105 - a backend set name, not a secret
HTTPS_REDIRECT_RULE_SET = "to-https"
OWN_POLICY = "app-routing"


def own_rules() -> list[dict[str, Any]]:
    """Shape "own-policy": the user's routing rules on :80 (they must survive, in order)."""
    return [
        {
            "name": "api",
            "condition": "any(http.request.url.path sw '/api/')",
            "actions": [{"name": "FORWARD_TO_BACKENDSET", "backendSetName": "app"}],
        },
        {
            "name": "static",
            "condition": "any(http.request.url.path sw '/static/')",
            "actions": [{"name": "FORWARD_TO_BACKENDSET", "backendSetName": "app"}],
        },
    ]


REDIRECT_RULE_SET = "acme-redirect"
CHALLENGE_LISTENER = "http"
PAR_LIFETIME = timedelta(days=365)


def object_storage_host(region: str) -> str:
    """Object Storage's public host name in ``region``."""
    return f"objectstorage.{region}.oraclecloud.com"


def par_redirect_rule(
    access_uri: str, *, host: str, protocol: str = "HTTPS", port: int = 443
) -> dict[str, Any]:
    """A REDIRECT rule sending ``/.well-known/acme-challenge/*`` into a bucket-level PAR.

    ``{path}`` is the whole original path, so ``<accessUri>`` + ``.well-known/acme-challenge/<t>``
    is the object the renewer wrote (wire facts 1.3). In a tenancy: ``HTTPS``, port 443 (a null
    port would keep the request's 80). ``query: ""`` drops any query string.
    """
    if not access_uri.endswith("/o/"):
        msg = f"a bucket-level PAR accessUri ends with /o/, not {access_uri!r}"
        raise ValueError(msg)
    return {
        "action": "REDIRECT",
        "responseCode": 302,
        "conditions": [
            {"attributeName": "PATH", "attributeValue": CHALLENGE_PATH, "operator": "PREFIX_MATCH"}
        ],
        "redirectUri": {
            "protocol": protocol,
            "host": host,
            "port": port,
            "path": access_uri.removesuffix("/") + "{path}",
            "query": "",
        },
    }


@dataclass(frozen=True, slots=True)
class ChallengePar:
    """A PAR on the challenge bucket: its id (to delete it) and its ``accessUri`` (shown once)."""

    id: str
    access_uri: str
    time_expires: datetime


class RedirectMode:
    """The redirect-mode set-up of a world and the operator actions tests need around it.

    Calls go through the real SDK signed as the world's ``operator`` (Admins); each load
    balancer change waits for its work request.
    """

    def __init__(self, world: SandboxWorld) -> None:
        self._world = world
        endpoint_port = urllib.parse.urlsplit(world.emulator.endpoint).port
        if endpoint_port is None:
            msg = f"the emulator endpoint {world.emulator.endpoint} names no port"
            raise RuntimeError(msg)
        self.port = endpoint_port
        self.host = object_storage_host(world.tenancy.region)
        config = world.operator_config()
        clients = {
            "retry_strategy": oci.retry.NoneRetryStrategy(),
            "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
            "service_endpoint": world.emulator.endpoint,
        }
        self._storage = oci.object_storage.ObjectStorageClient(config, **clients)
        self._lb = oci.load_balancer.LoadBalancerClient(config, **clients)
        self.par: ChallengePar | None = None

    @classmethod
    def install(cls, world: SandboxWorld) -> RedirectMode:
        """Create the PAR and the rule set and put the rule set on the :80 listener."""
        mode = cls(world)
        mode.par = mode.create_par()
        rule_set = oci.load_balancer.models.CreateRuleSetDetails(
            name=REDIRECT_RULE_SET, items=[mode.rule(mode.par)]
        )
        mode._wait(mode._lb.create_rule_set(LB_ID, rule_set))
        listener = mode._lb.get_load_balancer(LB_ID).data.listeners[CHALLENGE_LISTENER]
        details = oci.load_balancer.models.UpdateListenerDetails(
            default_backend_set_name=listener.default_backend_set_name,
            port=listener.port,
            protocol=listener.protocol,
            hostname_names=listener.hostname_names,
            path_route_set_name=listener.path_route_set_name,
            connection_configuration=listener.connection_configuration,
            routing_policy_name=None,  # the challenge path no longer goes to the token backend
            rule_set_names=[*listener.rule_set_names, REDIRECT_RULE_SET],
        )
        mode._wait(mode._lb.update_listener(details, LB_ID, CHALLENGE_LISTENER))
        return mode

    def create_par(
        self, *, lifetime: timedelta = PAR_LIFETIME, name: str = "acme-challenges-read"
    ) -> ChallengePar:
        """A read-only PAR on the challenge objects of the challenge bucket, listing denied.

        ``objectName`` on an ``AnyObjectRead`` PAR is a name prefix (SDK docstring): only
        ``.well-known/acme-challenge/*`` is readable through it, whatever else the bucket holds.
        """
        details = oci.object_storage.models.CreatePreauthenticatedRequestDetails(
            name=name,
            access_type="AnyObjectRead",
            object_name=CHALLENGE_PATH.lstrip("/"),
            bucket_listing_action="Deny",
            time_expires=datetime.now(UTC) + lifetime,
        )
        par = self._storage.create_preauthenticated_request(
            NAMESPACE, CHALLENGE_BUCKET, details
        ).data
        return ChallengePar(par.id, par.access_uri, par.time_expires)

    def delete_par(self, par: ChallengePar) -> None:
        """Delete ``par``: its URL stops working at once."""
        self._storage.delete_preauthenticated_request(NAMESPACE, CHALLENGE_BUCKET, par.id)

    def rule(self, par: ChallengePar) -> oci.load_balancer.models.RedirectRule:
        """The sandbox's redirect to ``par``: plain HTTP on the emulator's port."""
        rule = par_redirect_rule(par.access_uri, host=self.host, protocol="HTTP", port=self.port)
        return oci.load_balancer.models.RedirectRule(
            action="REDIRECT",
            response_code=rule["responseCode"],
            conditions=[
                oci.load_balancer.models.PathMatchCondition(
                    attribute_name="PATH", attribute_value=CHALLENGE_PATH, operator="PREFIX_MATCH"
                )
            ],
            redirect_uri=oci.load_balancer.models.RedirectUri(**rule["redirectUri"]),
        )

    def point_at(self, par: ChallengePar) -> None:
        """Make the rule set redirect to ``par`` instead (UpdateRuleSet)."""
        details = oci.load_balancer.models.UpdateRuleSetDetails(items=[self.rule(par)])
        self._wait(self._lb.update_rule_set(LB_ID, REDIRECT_RULE_SET, details))
        self.par = par

    def self_check_resolve(self) -> dict[tuple[str, int], tuple[str, int]]:
        """The self-check's map: Object Storage's name on the emulator's port -> loopback."""
        return {(self.host, self.port): ("127.0.0.1", self.port)}

    def _wait(self, response: Any, timeout: float = 10.0) -> None:  # noqa: ANN401 - SDK Response
        work_request = response.headers["opc-work-request-id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self._lb.get_work_request(work_request).data
            if state.lifecycle_state == "SUCCEEDED":
                return
            if state.lifecycle_state == "FAILED":
                msg = f"work request {work_request} FAILED: {state.error_details}"
                raise RuntimeError(msg)
            time.sleep(0.02)
        msg = f"work request {work_request} did not finish within {timeout} s"
        raise RuntimeError(msg)
