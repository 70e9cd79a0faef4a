"""The operator CLI: ``python -m renewer {renew,plan,status,rollback,revoke}`` from a workstation.

The same actions as the function's payload, run by the same code (:func:`renewer.runner.execute`)
with an OCI config-file profile instead of resource principals. The flags map onto the
function's environment variables (:mod:`renewer.environment`), so an operator can reproduce an
invocation exactly: ``--config FILE`` is ``RENEWER_CONFIG``, ``--config-object`` is
``RENEWER_CONFIG_OBJECT``, ``--profile`` is ``OCI_CONFIG_PROFILE``...

Output: a table (expiry, days left, what happens next) or, with ``--json``, the function's JSON
response. Progress lines go to stderr while a run works (``--quiet`` silences them). Exit
status: 0 when nothing failed, 1 when a certificate failed, 2 for a usage or configuration
error (the message says what to fix).

Every file the operator names — ``--config``, the OCI config file (``--oci-config-file``, else
``OCI_CONFIG_FILE``, else ``~/.oci/config``) and its profile's ``key_file``, ``--ca-bundle`` — is
read and checked before anything runs: missing, unreadable, empty, not UTF-8, not INI, not a key,
not a certificate are exit 2 with the file's name and what it should hold, never a traceback.
Messages never quote a file's content (it may hold a key or a pass phrase).
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import json
import logging
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from renewer import pki
from renewer.environment import Environment
from renewer.errors import ConfigError, RenewerError
from renewer.invocation import Action, Invocation, Trigger, parse_payload
from renewer.revocation import RevocationReason, SignWith
from renewer.runner import Result, budget_from_deadline, execute
from renewer.settings import load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_OCI_CONFIG = "~/.oci/config"  # the OCI CLI's and SDK's default
DEFAULT_PROFILE = "DEFAULT"
MAX_FILE_BYTES = 1_000_000  # a configuration, an OCI config, a key or a CA bundle is far smaller


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m renewer",
        description="Renew ACME certificates for OCI Load Balancers (the function, by hand).",
    )
    group = parser.add_argument_group("configuration (one of; default: the environment)")
    source = group.add_mutually_exclusive_group()  # argparse refuses both, exit 2
    source.add_argument("--config", type=Path, help="the configuration JSON file")
    source.add_argument(
        "--config-object", metavar="BUCKET/OBJECT", help="the configuration object in OCI"
    )
    oci = parser.add_argument_group("OCI")
    oci.add_argument("--profile", help="OCI config profile (default: DEFAULT)")
    oci.add_argument("--oci-config-file", help="OCI config file (default: ~/.oci/config)")
    oci.add_argument("--region", help="override the profile's region")
    oci.add_argument("--endpoint", help="one base URL for every OCI service (an emulator)")
    oci.add_argument(
        "--loopback",
        metavar="JSON",
        help="sandbox only: where loopback puts port 80 and the listeners (RENEWER_LOOPBACK;"
        " `make sandbox` prints it)",
    )
    oci.add_argument(
        "--resource-principal", action="store_true", help="authenticate as the function does"
    )
    parser.add_argument("--ca-bundle", help="PEM file to trust for the ACME server")
    parser.add_argument("--json", action="store_true", help="print the JSON report")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        (Action.RENEW, "renew what is due and deploy it (the scheduled run)"),
        (Action.PLAN, "what a renew would do now; changes nothing"),
        (
            Action.STATUS,
            "what each target serves now next to what Vault holds (drift flagged), the next"
            " renewal and the last runs; changes nothing",
        ),
        (
            Action.HISTORY,
            "each stored certificate version (version, serial, expiry, where it is deployed):"
            " the versions rollback accepts; changes nothing",
        ),
        (
            Action.ROLLBACK,
            "re-deploy an earlier stored version of ONE certificate to its targets"
            " (see `history NAME` for the versions)",
        ),
        (
            Action.REVOKE,
            "revoke one stored version of ONE certificate at the CA (a served one is replaced"
            " and deployed first)",
        ),
        (
            Action.VALIDATE,
            "check a configuration document offline (no OCI access): exit 0 when valid,"
            " 2 listing every problem",
        ),
    ):
        sub = actions.add_parser(action.value, help=text, description=text)
        if action in (Action.ROLLBACK, Action.REVOKE):
            verb = "roll back" if action is Action.ROLLBACK else "revoke"
            sub.add_argument("certificate", metavar="NAME", help=f"the one certificate to {verb}")
            sub.add_argument(
                "--version",
                type=int,
                required=True,
                help=f"the stored version to {verb}, as `history NAME` lists it",
            )
            if action is Action.REVOKE:
                sub.add_argument(
                    "--reason",
                    required=True,
                    choices=[reason.value for reason in RevocationReason],
                    help="RFC 5280 revocation reason",
                )
                sub.add_argument(
                    "--sign-with",
                    choices=[signer.value for signer in SignWith],
                    help="the key that signs the request (default: account)",
                )
                sub.add_argument("--dry-run", action="store_true", help="only show the plan")
            continue
        if action is Action.VALIDATE:
            sub.add_argument(
                "document",
                nargs="?",
                type=Path,
                metavar="FILE",
                help="the configuration JSON file (default: --config, else RENEWER_CONFIG)",
            )
        sub.add_argument(
            "certificates", nargs="*", metavar="NAME", help="certificates (default: all)"
        )
        if action is Action.RENEW:
            sub.add_argument("--force", action="store_true", help="renew even when not due")
            sub.add_argument("--dry-run", action="store_true", help="same as plan")
    return parser


def main(argv: Sequence[str] | None = None, *, out: IO[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see the module docstring)."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        invocation = _invocation(args)  # the flags first: no file is read for a usage error
        if invocation.action is Action.VALIDATE:
            _offline_document(args, os.environ)
        variables = _environment(args, os.environ)
        environment = Environment.from_env(variables)
        if invocation.action is not Action.VALIDATE:  # offline: no credentials are read
            _check_files(args, variables)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    _progress(quiet=args.quiet, level=environment.log_level)
    call_id = f"cli-{uuid.uuid4().hex[:12]}"
    try:
        result = execute(
            invocation, environment, call_id=call_id, budget_s=budget_from_deadline(None)
        )
    except RenewerError as exc:
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED
    out.write(result.to_json() + "\n" if args.json else render(result))
    return EXIT_FAILED if result.failed else EXIT_OK


def _offline_document(args: argparse.Namespace, base: Mapping[str, str]) -> None:
    """``validate`` reads a document, never OCI: FILE, ``--config`` or ``RENEWER_CONFIG``."""
    document = getattr(args, "document", None)
    if document is not None:
        if args.config is not None and args.config != document:
            msg = "validate takes one document: give FILE or --config, not both"
            raise ConfigError(msg)
        args.config = document
    if args.config_object:
        msg = (
            "validate is offline and does not read --config-object; fetch the object"
            " (oci os object get --bucket-name BUCKET --name OBJECT --file config.json) and"
            " run `python -m renewer validate config.json`"
        )
        raise ConfigError(msg)
    if args.config is None and not base.get("RENEWER_CONFIG"):
        msg = "validate needs a document: python -m renewer validate FILE (or --config FILE)"
        raise ConfigError(msg)


def _environment(args: argparse.Namespace, base: Mapping[str, str]) -> dict[str, str]:
    """The function's environment variables, from the flags over ``base``."""
    env = dict(base)
    env.setdefault("OCI_AUTH", "config_file")  # a workstation, unless told otherwise
    if args.config is not None:
        text = read_user_file(f"--config {args.config}", args.config, "the configuration JSON")
        try:
            load_config(text)  # here, so the error names the file rather than RENEWER_CONFIG
        except ConfigError as exc:
            msg = f"--config {args.config}: {exc}"
            raise ConfigError(msg) from None
        env["RENEWER_CONFIG"] = text
        env.pop("RENEWER_CONFIG_OBJECT", None)
    if args.config_object:
        env["RENEWER_CONFIG_OBJECT"] = args.config_object
        env.pop("RENEWER_CONFIG", None)
    if args.action == Action.VALIDATE.value:
        env.pop("RENEWER_CONFIG_OBJECT", None)  # offline: the document given, nothing else
        env["OCI_AUTH"] = "config_file"
    flags = {
        "OCI_CONFIG_PROFILE": args.profile,
        "OCI_CONFIG_FILE": args.oci_config_file,
        "OCI_REGION": args.region,
        "RENEWER_OCI_ENDPOINT": args.endpoint,
        "RENEWER_ACME_CA_BUNDLE": args.ca_bundle,
        "RENEWER_LOOPBACK": args.loopback,
    }
    env.update({key: value for key, value in flags.items() if value})
    if args.resource_principal:
        env["OCI_AUTH"] = "resource_principal"
    return env


def read_user_file(label: str, path: Path, holds: str) -> str:
    """The UTF-8 text of a file the operator named; ConfigError naming it (``label``) otherwise.

    ``holds`` says what the file should hold, for the message. The content is never quoted.
    """
    try:
        with path.expanduser().open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        msg = f"{label}: cannot read it ({reason}); it should hold {holds}"
        raise ConfigError(msg) from None
    if len(data) > MAX_FILE_BYTES:
        msg = f"{label}: the file is over {MAX_FILE_BYTES:,} bytes; it should hold {holds}"
        raise ConfigError(msg)
    if not data.strip():
        msg = f"{label}: the file is empty; it should hold {holds}"
        raise ConfigError(msg)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = (
            f"{label}: the file is not UTF-8 text (byte {exc.start + 1} of {len(data):,});"
            f" it should hold {holds}"
        )
        raise ConfigError(msg) from None


def _check_files(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    """Read every other file the run will use, so a bad one is exit 2 naming it (see module)."""
    if env.get("OCI_AUTH") == "config_file":
        _check_oci_config(
            Path(env.get("OCI_CONFIG_FILE") or DEFAULT_OCI_CONFIG),
            env.get("OCI_CONFIG_PROFILE") or DEFAULT_PROFILE,
            flag="--oci-config-file" if args.oci_config_file else "OCI config file",
        )
    bundle = env.get("RENEWER_ACME_CA_BUNDLE")
    if bundle:
        flag = "--ca-bundle" if args.ca_bundle else "RENEWER_ACME_CA_BUNDLE"
        holds = "the PEM certificates of the CA to trust"
        text = read_user_file(f"{flag} {bundle}", Path(bundle), holds)
        if "-----BEGIN CERTIFICATE-----" not in text:
            msg = f"{flag} {bundle}: the file holds no PEM certificate; it should hold {holds}"
            raise ConfigError(msg)


def _check_oci_config(location: Path, profile: str, *, flag: str) -> None:
    """The OCI config file parses as the SDK parses it, has the profile, and its key is a key."""
    label = f"{flag} {location}"
    holds = "OCI CLI profiles (INI sections such as [DEFAULT]); create it with `oci setup config`"
    text = read_user_file(label, location, holds)
    parser = configparser.ConfigParser(interpolation=None)  # as oci.config.from_file
    try:
        parser.read_string(text, source=str(location))
    except configparser.Error as exc:
        # configparser's own message quotes the offending line: it may hold a pass phrase.
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        msg = f"{label}: the file is not INI{where}; it should hold {holds}"
        raise ConfigError(msg) from None
    if profile != configparser.DEFAULTSECT and not parser.has_section(profile):
        known = ", ".join(parser.sections()) or "none besides DEFAULT"
        msg = f"{label}: there is no profile [{profile}] (profiles: {known})"
        raise ConfigError(msg)
    key_file = parser.get(profile, "key_file", fallback=None)
    if not key_file:
        msg = f"{label}: profile [{profile}] has no key_file (the API signing key)"
        raise ConfigError(msg)
    key_label = f"key_file {key_file} of profile [{profile}] in {location}"
    key_holds = "the PEM private key of the profile's API signing key"
    pem = read_user_file(key_label, Path(key_file), key_holds)
    if "-----BEGIN" not in pem or "PRIVATE KEY-----" not in pem:
        msg = f"{key_label}: the file holds no PEM private key; it should hold {key_holds}"
        raise ConfigError(msg)
    if parser.get(profile, "pass_phrase", fallback=None) is None and "ENCRYPTED" not in pem:
        try:
            pki.load_private_key(pem)
        except ConfigError:
            msg = (
                f"{key_label}: the file is not a readable PEM private key;"
                f" it should hold {key_holds}"
            )
            raise ConfigError(msg) from None


def _invocation(args: argparse.Namespace) -> Invocation:
    """The flags as the function's payload, validated by the same rules (parse_payload)."""
    one = (Action.ROLLBACK.value, Action.REVOKE.value)
    names = [args.certificate] if args.action in one else args.certificates
    payload: dict[str, object] = {
        "action": args.action,
        "certificates": list(dict.fromkeys(names)),
    }
    for flag, field in (
        ("force", "force"),
        ("dry_run", "dryRun"),
        ("version", "version"),
        ("reason", "reason"),
        ("sign_with", "signWith"),
    ):
        value = getattr(args, flag, None)
        if value is not None and value is not False:  # not `in (None, False)`: 0 == False
            payload[field] = value
    parsed = parse_payload(json.dumps(payload).encode())
    return dataclasses.replace(parsed, trigger=Trigger.CLI)


class _ProgressFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        return f"{when} {record.levelname.lower():7} {record.getMessage()}"


def _progress(*, quiet: bool, level: str) -> None:
    """Progress on stderr: the renewer's own log lines, short; the SDKs stay quiet."""
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ProgressFormatter())
    root.addHandler(handler)
    logging.getLogger("renewer").setLevel(logging.WARNING if quiet else level)


# --- the table ---------------------------------------------------------------------------------

_SERIAL_WIDTH = 16  # enough to tell serials apart in a table; --json has them whole
_COLUMNS = ("CERTIFICATE", "OUTCOME", "REASON", "SERIAL", "EXPIRES (UTC)", "DAYS", "NEXT")


def render(result: Result, *, now: datetime | None = None) -> str:
    """The report as a table plus one line per certificate saying what happened or failed."""
    document = result.document
    if "ignored" in document:
        return f"ignored: {document['ignored']}\n"
    if document.get("action") == Action.VALIDATE.value:
        return _render_validate(document)
    if document.get("action") == Action.HISTORY.value:
        return _render_history(document)
    now = now or datetime.now(UTC)
    rows = [_row(c, now) for c in document.get("certificates", [])]
    widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [_COLUMNS, *rows]
    ]
    lines.append("")
    for certificate in document.get("certificates", []):
        detail = certificate.get("error") or certificate.get("message") or ""
        lines.append(f"{certificate['name']}: {detail}")
        # Exactly what to create (Terraform's dns_persist_records, or by hand).
        lines.extend(
            f'  create {r["name"]}. {r["type"]} "{r["value"]}"'
            for r in certificate.get("dns_records") or ()
        )
    lines.append(f"{document.get('action', document.get('mode'))}: {_counted(document)}")
    if document.get("action") == Action.STATUS.value:
        lines += _render_served(document)
    runs = document.get("runs") or []
    if runs:
        lines += ["", "Last runs (newest first):"]
        lines += [
            f"  {run.get('started_at')}  {run.get('trigger')}/{run.get('action')}"
            f"  {'FAILED' if run.get('failed') else 'ok'}  {_counted(run)}"
            f"  call {run.get('call_id')}"
            for run in runs
        ]
    return "\n".join(lines) + "\n"


def _render_served(document: Mapping[str, Any]) -> list[str]:
    """Status: per certificate, what Vault holds, then what each target serves (drift flagged)."""
    lines = ["", "Held in Vault and served now:"]
    for certificate in document.get("certificates", []):
        held = certificate.get("held")
        lines.append(
            f"  {certificate['name']}: Vault holds "
            + (
                "nothing yet"
                if not held
                else f"version {held['version']}, {_facts(held)}, issuer {held.get('issuer')}"
            )
        )
        for target in certificate.get("targets") or []:
            where = target["id"] + (f" listener {target['listener']}" if target["listener"] else "")
            port = f" :{target['port']}" if target.get("port") else ""
            served = target.get("served")
            facts = (
                f"serves {_facts(served)}, issuer {served.get('issuer')}" if served else "serves ?"
            )
            flag = "DRIFT" if target["drift"] else "ok"
            lines.append(f"    {where}{port}: {facts}")
            lines.append(f"      {flag}: {target['note']}")
    return lines


def _facts(values: Mapping[str, Any]) -> str:
    """``serial S, expires T (D days), KEY`` of a held or served certificate."""
    expires = values.get("not_after") or "?"
    days = values.get("days_left")
    left = f" ({days} days)" if days is not None else ""
    return f"serial {values.get('serial')}, expires {expires}{left}, {values.get('key_type')}"


_HISTORY_COLUMNS = ("VERSION", "SERIAL", "EXPIRES (UTC)", "DAYS", "STAGES", "DEPLOYED AT", "NOTE")


def _render_history(document: Mapping[str, Any]) -> str:
    """History: one table per certificate; the VERSION column is what rollback takes."""
    lines: list[str] = []
    for certificate in document.get("certificates", []):
        name = certificate["name"]
        rows = [
            (
                str(v["version"]),
                v.get("serial") or "-",
                _when(v.get("not_after")),
                "-" if v.get("days_left") is None else f"{v['days_left']:.1f}",
                ",".join(v.get("stages") or []) or "-",
                ", ".join(v.get("deployed_at") or []) or "-",
                v.get("note") or ("rollback ok" if v.get("rollback") else "-"),
            )
            for v in certificate.get("versions") or []
        ]
        lines.append(f"{name}:")
        if not rows:
            lines += ["  no certificate stored yet", ""]
            continue
        widths = [
            max(len(r[i]) for r in [_HISTORY_COLUMNS, *rows]) for i in range(len(_HISTORY_COLUMNS))
        ]
        lines += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [_HISTORY_COLUMNS, *rows]
        ]
        lines += [f"  roll back with: python -m renewer rollback {name} --version VERSION", ""]
    return "\n".join(lines) + "\n"


def _when(value: object) -> str:
    moment = _time(value)
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _render_validate(document: Mapping[str, Any]) -> str:
    certificates = document.get("certificates", [])
    lines = [
        f"valid: {len(certificates)} certificate(s), ACME directory {document.get('directory_url')}"
    ]
    lines += [
        f"  {c['name']}: {', '.join(c['dns_names'])} ({c['key_type']}, {c['targets']} target(s))"
        for c in certificates
    ]
    return "\n".join(lines) + "\n"


def _counted(document: Mapping[str, Any]) -> str:
    totals = document.get("totals") or {}
    return ", ".join(f"{n} {outcome}" for outcome, n in totals.items() if n) or "nothing to do"


def _row(certificate: Mapping[str, Any], now: datetime) -> tuple[str, ...]:
    not_after = _time(certificate.get("not_after"))
    next_renewal = _time(certificate.get("next_renewal"))
    days = f"{(not_after - now).total_seconds() / 86400:.1f}" if not_after else "-"
    if certificate.get("due"):
        upcoming = "due now"
    elif next_renewal is not None:
        upcoming = "renew " + next_renewal.strftime("%Y-%m-%d %H:%M")
    else:
        upcoming = "-"
    serial = certificate.get("serial") or "-"
    return (
        str(certificate["name"]),
        str(certificate["outcome"]),
        str(certificate["reason"]),
        serial if len(serial) <= _SERIAL_WIDTH else serial[: _SERIAL_WIDTH - 2] + "..",
        not_after.strftime("%Y-%m-%d %H:%M") if not_after else "-",
        days,
        upcoming,
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value)


if __name__ == "__main__":  # pragma: no cover - python -m renewer.cli
    sys.exit(main())
