"""Deployment attempts (issue 11 §5): the id deployers derive retry tokens from.

It is recorded before any deploy call (the state's unfinished marker): a run after a failed
or dead one reuses it — its retry tokens find the earlier work requests again — and a run
after a finished one, a rollback included, is a new attempt. Pure logic over the in-memory
ports of ``test_renewal``.
"""

from __future__ import annotations

from renewer.errors import TransientError
from renewer.report import Outcome
from tests.unit.test_renewal import new_world, only


def test_each_finished_run_is_a_new_attempt_and_the_rollback_too():
    world = new_world()
    only(world.run())
    only(world.service(holder="run-2").run(budget_s=600, force=True))
    first = world.store.latest("shop")
    assert first is not None

    only(world.service(holder="run-3").rollback("shop", 2, budget_s=600))

    attempts = world.deployer.attempts
    assert len(attempts) == 3
    assert len(set(attempts)) == 3  # never a token of an earlier, finished attempt
    assert all(
        attempt and attempt.startswith(("run-1@", "run-2@", "run-3@")) for attempt in attempts
    )


def test_a_run_after_a_failed_deploy_retries_the_same_attempt():
    world = new_world()
    world.deployer.fail_next("deploy", TransientError("work request still IN_PROGRESS"))
    failed = only(world.run())
    assert failed.outcome is Outcome.FAILED

    retried = only(world.service(holder="run-2").run(budget_s=600))

    assert retried.outcome is not Outcome.FAILED
    first, second = world.deployer.attempts
    assert first == second  # the marker of run-1 is still set: the same attempt, same tokens
    assert first is not None
    assert first.startswith("run-1@")
