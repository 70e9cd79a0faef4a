"""``make sandbox``: the sandbox running, for the operator CLI (``python -m renewer``) to drive.

Starts what ``make demo`` starts — Pebble, the OCI emulator seeded with the example tenancy
(:func:`sandbox.example.example_fixture`: a load balancer whose :80 listener routes the challenge
path to the token server and whose :443 listener serves an expiring self-signed certificate,
the challenge and state buckets, a vault and key, IAM enforced) and the token server — then
writes, under ``--dir`` (default ``.cache/sandbox``):

* ``oci_config`` and the key of an API-key profile ``[DEFAULT]`` for the example's operator
  (the group ``Admins``), as ``oci setup config`` would;
* ``config.json``: the renewer's configuration document for this tenancy (Pebble's directory);

and prints the ``export`` lines and commands to run the CLI against it. Everything the CLI needs
beyond a real tenancy is set through documented variables (``renewer/environment.py``):
``RENEWER_OCI_ENDPOINT`` (every OCI service at the emulator), ``RENEWER_ACME_CA_BUNDLE`` (Pebble's
roots) and ``RENEWER_LOOPBACK`` (sandbox only: where loopback puts port 80 and the listeners; the
CLI's ``--loopback`` flag says the same). Serves until Ctrl-C or SIGTERM, then stops everything.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path

from sandbox.pebble import PebbleNotInstalled
from sandbox.world import SandboxWorld

NAMES = ("shop.example.com", "www.shop.example.com")
DEFAULT_DIR = Path(".cache/sandbox")


def say(text: str = "") -> None:
    """One line for the person at the terminal."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def write_profile(world: SandboxWorld, directory: Path) -> Path:
    """An OCI config file whose [DEFAULT] profile is the example's operator (an API key)."""
    config = world.operator_config()
    lines = ["[DEFAULT]", *(f"{key}={value}" for key, value in sorted(config.items()))]
    path = directory / "oci_config"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def exports(world: SandboxWorld, profile: Path) -> dict[str, str]:
    """The variables that point the CLI at this sandbox."""
    environment = world.function_environment()
    return {
        "OCI_CONFIG_FILE": str(profile.resolve()),
        "RENEWER_OCI_ENDPOINT": environment["RENEWER_OCI_ENDPOINT"],
        "RENEWER_ACME_CA_BUNDLE": str(Path(environment["RENEWER_ACME_CA_BUNDLE"]).resolve()),
        "RENEWER_LOOPBACK": environment["RENEWER_LOOPBACK"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the sandbox until interrupted; 2 when Pebble is not installed."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.cli_sandbox")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where to write files")
    args = parser.parse_args(argv)
    directory: Path = args.dir
    shutil.rmtree(directory, ignore_errors=True)  # credentials of a previous sandbox are void
    directory.mkdir(parents=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    say("Starting the sandbox: Pebble, the OCI emulator (example tenancy), the token server ...")
    try:
        with SandboxWorld(directory / "world", certificates=NAMES) as world:
            profile = write_profile(world, directory)
            config = directory / "config.json"
            config.write_text(json.dumps(world.config_document(), indent=2) + "\n")
            say(f"Ready. OCI emulator at {world.emulator.endpoint},")
            say(f"Pebble at {world.pebble.directory_url}")
            say()
            say("In another shell, from this directory:")
            say()
            for key, value in exports(world, profile).items():
                say(f"export {key}={shlex.quote(value)}")
            say()
            cli = f".venv/bin/python -m renewer --config {config}"
            for command in ("status", "plan", "renew", "history shop", "status"):
                say(f"{cli} {command}")
            say(f".venv/bin/python -m renewer validate {config}")
            say()
            say("Ctrl-C stops the sandbox.")
            stop.wait()
            say("Stopping the token server, the emulator and Pebble.")
    except PebbleNotInstalled as exc:
        say(f"sandbox: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
