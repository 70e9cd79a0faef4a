"""Which invocation a report belongs to: what the handler knows and the report does not. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from renewer.errors import ConfigError


class Trigger(enum.StrEnum):
    """What started the run. Stable: the journal and the notifications carry it."""

    SCHEDULE = "schedule"  # the Resource Scheduler schedule
    MANUAL = "manual"  # fn invoke / oci fn function invoke by a person
    EVENT = "event"  # an OCI Events rule
    CLI = "cli"  # the operator CLI on a workstation


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The invocation behind a report.

    ``call_id`` is the function's call id (``ctx.CallID()``) or, on the CLI, any unique id; it
    names the journal record and lets an operator find the run's log lines. ``action`` is what
    was asked for (``renew``, ``plan``, ``rollback``...).

    Raises:
        ConfigError: an unknown trigger or an empty call id / action.

    """

    trigger: Trigger | str
    call_id: str
    action: str

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "trigger", Trigger(self.trigger))
        except ValueError:
            choices = ", ".join(t.value for t in Trigger)
            msg = f"run trigger {self.trigger!r} is not one of: {choices}"
            raise ConfigError(msg) from None
        if not self.call_id.strip() or not self.action.strip():
            msg = "a run needs a non-empty call id and action"
            raise ConfigError(msg)
