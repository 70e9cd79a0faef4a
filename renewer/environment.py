"""Where an invocation finds its configuration and OCI: the process environment, validated.

OCI Functions hands the function's configuration to the process as environment variables
(``ctx.Config()`` *is* ``os.environ``); the operator CLI maps its flags onto the same names, so
both read one description:

==========================  ======================================================================
``RENEWER_CONFIG``          the configuration document inline (JSON; OCI limits a function's
                            whole configuration to 4 KB, so larger set-ups use the next one)
``RENEWER_CONFIG_OBJECT``   ``<bucket>/<object>``: the document as an object in the tenancy's
                            namespace, e.g. ``acme-state/config/renewer.json`` (what Terraform
                            writes; an OCI Events rule on it triggers a run when it changes)
``OCI_AUTH``                ``resource_principal`` (default; inside the function) or
                            ``config_file`` (a workstation: ``OCI_CONFIG_FILE``,
                            ``OCI_CONFIG_PROFILE``)
``OCI_REGION``              overrides the signer's region
``RENEWER_OCI_ENDPOINT``    one base URL for every OCI service (the sandbox's emulator)
``RENEWER_OCI_ENDPOINTS``   JSON ``{"<service>": "<url>"}`` per service (dedicated regions)
``RENEWER_ACME_CA_BUNDLE``  PEM file to trust for the ACME server (a private CA; the sandbox)
``RENEWER_LOOPBACK``        sandbox only: JSON ``{"selfCheckPort", "selfCheckHost",
                            "listenerPorts": {"<lb id>": {"<port>": <local port>}},
                            "resolve": {"<host>:<port>": "<host>:<port>"}}`` — where loopback
                            puts port 80, the listeners and the stand-in endpoints
``RENEWER_LOG_LEVEL``       ``INFO`` (default) or ``DEBUG``, ``WARNING``...
==========================  ======================================================================

Exactly one of ``RENEWER_CONFIG`` and ``RENEWER_CONFIG_OBJECT`` must be set. Every problem is a
:class:`~renewer.errors.ConfigError` naming the variable and the fix. Pure except
:func:`load_configuration`, which reads the configuration object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from renewer.errors import ConfigError
from renewer.untrusted import UnreadableJson, decode_json, describe, key_name, shown_choice

if TYPE_CHECKING:  # the SDK is imported by the adapters only, when a run needs it
    from renewer.adapters.oci_clients import OciClients, OciSettings
    from renewer.settings import Config

_OBJECT = re.compile(r"(?P<bucket>[A-Za-z0-9_.-]{1,256})/(?P<name>[^\s].*)")
_ADDRESS = re.compile(r"(?P<host>[A-Za-z0-9_.-]+):(?P<port>\d{1,5})")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_AUTHS = ("resource_principal", "config_file")


@dataclass(frozen=True, slots=True)
class Loopback:
    """Sandbox knobs: where the CA's port 80, the listeners and stand-in endpoints really are."""

    self_check_port: int = 80
    self_check_host: str | None = None
    listener_ports: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    resolve: Mapping[tuple[str, int], tuple[str, int]] = field(default_factory=dict)

    def address_override(self, load_balancer_id: str, port: int) -> tuple[str, int] | None:
        """VERIFY's ``(lb id, listener port) -> (host, port)``; None: the listener's own IP."""
        local = self.listener_ports.get(load_balancer_id, {}).get(port)
        return None if local is None else (self.self_check_host or "127.0.0.1", local)


@dataclass(frozen=True, slots=True)
class Environment:
    """The validated environment of one process."""

    config_inline: str | None = None
    config_object: str | None = None  # "<bucket>/<object>"
    auth: str = "resource_principal"
    config_file: str | None = None
    profile: str | None = None
    region: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)
    acme_ca_bundle: str | None = None
    loopback: Loopback | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Environment:
        """Read and validate ``env``; ConfigError lists every problem, each with its fix."""
        problems: list[str] = []
        inline = env.get("RENEWER_CONFIG") or None
        config_object = env.get("RENEWER_CONFIG_OBJECT") or None
        if inline and config_object:
            problems.append(
                "both RENEWER_CONFIG and RENEWER_CONFIG_OBJECT are set: keep exactly one"
            )
        elif not inline and not config_object:
            problems.append(
                "no configuration: set RENEWER_CONFIG (the JSON document) or"
                " RENEWER_CONFIG_OBJECT (<bucket>/<object> holding it)"
            )
        if config_object and not _OBJECT.fullmatch(config_object):
            problems.append(
                f"RENEWER_CONFIG_OBJECT ({describe(config_object)}) must be"
                " <bucket>/<object name>, e.g. acme-state/config/renewer.json"
            )
        auth = env.get("OCI_AUTH") or "resource_principal"
        if auth not in _AUTHS:
            problems.append(f"OCI_AUTH {shown_choice(auth)} is unknown: use {' or '.join(_AUTHS)}")
        level = (env.get("RENEWER_LOG_LEVEL") or "INFO").upper()
        if level not in _LEVELS:
            problems.append(
                f"RENEWER_LOG_LEVEL {shown_choice(level)} is unknown: use {', '.join(_LEVELS)}"
            )
        endpoints = _endpoints(env, problems)
        loopback = _loopback(env.get("RENEWER_LOOPBACK"), problems)
        if problems:
            raise ConfigError("environment: " + "; ".join(problems))
        return cls(
            config_inline=inline,
            config_object=config_object,
            auth=auth,
            config_file=env.get("OCI_CONFIG_FILE") or None,
            profile=env.get("OCI_CONFIG_PROFILE") or None,
            region=env.get("OCI_REGION") or None,
            endpoints=endpoints,
            acme_ca_bundle=env.get("RENEWER_ACME_CA_BUNDLE") or None,
            loopback=loopback,
            log_level=level,
        )

    def oci_settings(self) -> OciSettings:
        """How to reach OCI (the SDK's import happens here, on first use)."""
        from renewer.adapters.oci_clients import OciSettings  # noqa: PLC0415 - import cost

        return OciSettings(
            auth=self.auth,
            config_file=self.config_file,
            profile=self.profile,
            region=self.region,
            endpoints=dict(self.endpoints),
        )


def load_configuration(environment: Environment, clients: OciClients | None) -> Config:
    """The validated configuration document, inline or read from its object.

    Raises:
        ConfigError: the document is invalid (every problem, with JSON paths), or the object
            cannot be read (naming RENEWER_CONFIG_OBJECT).

    """
    from renewer.settings import load_config  # noqa: PLC0415 - keep this module light

    if environment.config_inline is not None:
        return _with_source(load_config, environment.config_inline, "RENEWER_CONFIG")
    if clients is None:
        msg = "RENEWER_CONFIG_OBJECT needs OCI access to read it"
        raise ConfigError(msg)
    text = read_configuration_object(clients, environment.config_object or "")
    return _with_source(load_config, text, f"RENEWER_CONFIG_OBJECT {environment.config_object}")


def read_configuration_object(clients: OciClients, location: str) -> str:
    """The text of ``<bucket>/<object>`` in the tenancy's namespace (GetNamespace + GetObject)."""
    from renewer.adapters.oci_clients import translate  # noqa: PLC0415

    matched = _OBJECT.fullmatch(location)
    if matched is None:
        msg = f"RENEWER_CONFIG_OBJECT ({describe(location)}) must be <bucket>/<object name>"
        raise ConfigError(msg)
    bucket, name = matched["bucket"], matched["name"]
    action = (
        f"read the configuration object {name!r} from bucket {bucket!r} (RENEWER_CONFIG_OBJECT)"
    )
    namespace = clients.namespace()
    with translate(action):
        response = clients.object_storage.get_object(namespace, bucket, name)
    content = response.data.content
    try:
        return content.decode("utf-8") if isinstance(content, bytes) else str(content)
    except UnicodeDecodeError:
        msg = f"{action}: the object is not UTF-8 text"
        raise ConfigError(msg) from None


def _with_source(load: Any, text: str, source: str) -> Config:  # noqa: ANN401 - load_config
    try:
        config: Config = load(text)
    except ConfigError as exc:
        msg = f"{source}: {exc}"
        raise ConfigError(msg) from None
    return config


def _endpoints(env: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    from renewer.adapters.oci_clients import SERVICES  # noqa: PLC0415 - a tuple; cheap after oci

    one = env.get("RENEWER_OCI_ENDPOINT") or None
    endpoints: dict[str, str] = dict.fromkeys(SERVICES, one) if one else {}
    raw = env.get("RENEWER_OCI_ENDPOINTS")
    if raw:
        try:
            mapping = decode_json(raw)
        except UnreadableJson:
            mapping = None
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            problems.append(
                'RENEWER_OCI_ENDPOINTS must be a JSON object {"<service>": "<base URL>"}'
            )
        else:
            unknown = sorted(set(mapping) - set(SERVICES))
            if unknown:
                problems.append(
                    "RENEWER_OCI_ENDPOINTS names unknown service(s)"
                    f" {', '.join(key_name(name) for name in unknown[:5])};"
                    f" the services are {', '.join(SERVICES)}"
                )
            endpoints.update(mapping)
    for service, url in endpoints.items():
        if not url.startswith(("https://", "http://")):
            problems.append(
                f"the endpoint of {key_name(service)} ({describe(url)}) must be an http(s) URL"
            )
    return endpoints


def _loopback(raw: str | None, problems: list[str]) -> Loopback | None:
    if not raw:
        return None
    fix = (
        'RENEWER_LOOPBACK must be JSON {"selfCheckPort": <port>, "selfCheckHost": "<host>",'
        ' "listenerPorts": {"<lb id>": {"<port>": <port>}}, "resolve": {"<host:port>":'
        ' "<host:port>"}} (sandbox only)'
    )
    try:
        # decode_json bounds depth and digits; int() below then only sees short numbers, and
        # a string of digits too long for it is a ValueError, caught with the rest.
        document = decode_json(raw)
        port = int(document.get("selfCheckPort", 80))
        host = document.get("selfCheckHost")
        listeners = {
            str(lb): {int(p): int(local) for p, local in ports.items()}
            for lb, ports in document.get("listenerPorts", {}).items()
        }
        resolve = {
            _address(source): _address(target)
            for source, target in document.get("resolve", {}).items()
        }
        unknown = set(document) - {"selfCheckPort", "selfCheckHost", "listenerPorts", "resolve"}
    except (ValueError, TypeError, AttributeError):
        problems.append(fix)
        return None
    if unknown or (host is not None and not isinstance(host, str)):
        problems.append(fix)
        return None
    return Loopback(
        self_check_port=port, self_check_host=host, listener_ports=listeners, resolve=resolve
    )


def _address(text: str) -> tuple[str, int]:
    matched = _ADDRESS.fullmatch(text)
    if matched is None:
        msg = f"{describe(text)} is not <host>:<port>"
        raise ValueError(msg)
    return matched["host"], int(matched["port"])
