"""CronWorkflow scheduling on a clock the test controls, through a real in-process controller."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftloop.errors import EngineError
from tests.engine_api.conftest import shell_workflow
from workflows.engine._cron import latest_due
from workflows.engine.controller import Controller
from workflows.engine.store import CRON_WORKFLOW, WORKFLOW, Store

T0 = datetime(2026, 1, 15, 9, 0, 0, tzinfo=UTC)


def test_latest_due_honours_timezone_and_several_schedules() -> None:
    paris = {"schedules": ["0 3 * * *"], "timezone": "Europe/Paris"}  # 03:00 Paris = 02:00 UTC in winter
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert latest_due(paris, after, datetime(2026, 1, 1, 1, 59, tzinfo=UTC)) is None
    assert latest_due(paris, after, datetime(2026, 1, 1, 2, 30, tzinfo=UTC)) == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    both = {"schedule": "0 * * * *, 30 * * * *"}
    assert latest_due(both, after, datetime(2026, 1, 1, 5, 45, tzinfo=UTC)) == datetime(2026, 1, 1, 5, 30, tzinfo=UTC)
    assert latest_due(both, datetime(2026, 1, 1, 5, 30, tzinfo=UTC), datetime(2026, 1, 1, 5, 45, tzinfo=UTC)) is None
    with pytest.raises(EngineError, match="invalid cron"):
        latest_due({"schedule": "not a schedule"}, after, T0)
    with pytest.raises(EngineError, match="timezone"):
        latest_due({"schedule": "* * * * *", "timezone": "Mars/Olympus"}, after, T0)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[Controller]:
    store = Store.open(tmp_path)
    controller = Controller(store, tmp_path, namespace="ns")
    controller.cron._started = T0 - timedelta(hours=1)
    yield controller
    for namespace, name in controller.running():
        controller.terminate(namespace, name)
        controller.wait(namespace, name, 10)
    store.close()


def _cron(controller: Controller, name: str, script: str = "true", **spec: object) -> dict:
    body = {
        "kind": CRON_WORKFLOW,
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": "2026-01-15T07:00:00Z"},
        "spec": {"schedules": ["*/10 * * * *"], "workflowSpec": shell_workflow("x", script)["spec"], **spec},
    }
    return controller.store.create(body)


def _runs(controller: Controller, cron: str) -> list[dict]:
    return controller.store.list(WORKFLOW, "ns", label_selector=f"workflows.argoproj.io/cron-workflow={cron}")


def test_fires_once_per_due_time_and_records_status(controller: Controller) -> None:
    _cron(controller, "every10")
    assert controller.cron.tick(T0 + timedelta(minutes=5)) and len(_runs(controller, "every10")) == 1
    assert controller.cron.tick(T0 + timedelta(minutes=6)) == []
    [run] = _runs(controller, "every10")
    assert run["metadata"]["name"] == f"every10-{int(T0.timestamp())}"
    status = controller.store.get(CRON_WORKFLOW, "ns", "every10")["status"]
    assert status["lastScheduledTime"] == "2026-01-15T09:00:00Z"
    assert controller.wait("ns", run["metadata"]["name"], 30)["status"]["phase"] == "Succeeded"
    controller.cron.tick(T0 + timedelta(minutes=11))
    assert len(_runs(controller, "every10")) == 2


def test_suspended_cron_does_not_fire(controller: Controller) -> None:
    _cron(controller, "paused", suspend=True)
    assert controller.cron.tick(T0 + timedelta(minutes=1)) == []


def test_forbid_skips_while_a_run_is_active_and_replace_terminates_it(controller: Controller) -> None:
    _cron(controller, "forbid", "sleep 30", concurrencyPolicy="Forbid")
    _cron(controller, "replace", "sleep 30", concurrencyPolicy="Replace")
    controller.cron.tick(T0 + timedelta(minutes=1))
    controller.cron.tick(T0 + timedelta(minutes=11))
    assert len(_runs(controller, "forbid")) == 1
    replaced = _runs(controller, "replace")
    assert len(replaced) == 2
    first = controller.wait("ns", replaced[0]["metadata"]["name"], 30)
    assert first["status"]["phase"] in {"Failed", "Error"}


def test_missed_run_is_caught_up_within_starting_deadline(controller: Controller) -> None:
    cron = _cron(controller, "late", startingDeadlineSeconds=600)
    cron["status"] = {"lastScheduledTime": "2026-01-15T08:50:00Z"}
    controller.store.update(cron)
    controller.cron._started = T0 + timedelta(minutes=5)  # the engine was down at 09:00
    [run] = controller.cron.tick(T0 + timedelta(minutes=5))
    assert run["metadata"]["name"] == f"late-{int(T0.timestamp())}"


def test_run_later_than_starting_deadline_is_skipped(controller: Controller) -> None:
    _cron(controller, "strict", startingDeadlineSeconds=60)
    assert controller.cron.tick(T0 - timedelta(minutes=1)) == []
    assert controller.cron.tick(T0 + timedelta(minutes=5)) == []  # 09:00 is 5 minutes late, deadline 1 minute
    assert len(controller.cron.tick(T0 + timedelta(minutes=10, seconds=30))) == 1


def test_history_limits_delete_old_runs(controller: Controller) -> None:
    _cron(controller, "hist", successfulJobsHistoryLimit=1)
    for minutes in (1, 11, 21):
        [run] = controller.cron.tick(T0 + timedelta(minutes=minutes))
        controller.wait("ns", run["metadata"]["name"], 30)
    controller.cron.tick(T0 + timedelta(minutes=22))
    remaining = _runs(controller, "hist")
    assert [r["metadata"]["name"] for r in remaining] == [f"hist-{int((T0 + timedelta(minutes=20)).timestamp())}"]
