"""The stack's Prometheus and Alertmanager: started twice side by side (two homes, two sets of ports), each on
127.0.0.1 only, each loading the rules and routing generated for its own home."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from driftloop.config import get_settings
from driftloop.stack import ProcessManager
from driftloop.stack.services import service
from monitors.deployer._state import scrape_targets_file
from tests._support import free_port


@pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
                    reason="prometheus / prometheus-alertmanager not installed (`make system` installs them)")  # fmt: skip
def test_prometheus_and_alertmanager_run_twice_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stacks = []
    for index in range(2):
        env = {
            "DRIFTLOOP_HOME": str(tmp_path / f"home{index}"),
            "DRIFTLOOP_TRIGGER_TOKEN": f"token-{index}",
            **{f"DRIFTLOOP_{name}": f"http://127.0.0.1:{free_port()}"
               for name in ("PROMETHEUS_URL", "ALERTMANAGER_URL", "TRIGGER_URL", "MONITOR_URL", "SERVING_URL",
                            "MODEL_SERVER_URL")},
        }  # fmt: skip
        stacks.append((get_settings(env), env))
    # the first home's deployer runs one model server: its file_sd targets (what `driftloop deployer` writes)
    deployed = f"127.0.0.1:{free_port()}"
    targets = scrape_targets_file(stacks[0][0].home)
    targets.parent.mkdir(parents=True)
    targets.write_text(json.dumps([{"targets": [deployed], "labels": {"version": "7"}}]))
    managers = []
    try:
        for settings, env in stacks:
            for name, value in env.items():
                monkeypatch.setenv(name, value)  # the launcher reads the settings from its environment
            manager = ProcessManager(settings)
            managers.append(manager)
            for name in ("alertmanager", "prometheus"):
                assert manager.start(service(name)).healthy
        for (settings, _), _manager in zip(stacks, managers, strict=True):
            rules = httpx.get(f"{settings.prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
            assert next(r["name"] for r in rules[0]["rules"]) == "DriftloopFeatureDrift" and len(rules[0]["rules"]) == 6
            status = httpx.get(f"{settings.alertmanager_url}/api/v2/status", timeout=5).json()
            assert status["cluster"]["status"] == "disabled"  # --cluster.listen-address=: no gossip port at all
            assert f"{settings.trigger_url}/alertmanager" in status["config"]["original"]
            assert "token-" not in status["config"]["original"]  # the token stays in its 0600 file
            expected = {f"{url}/metrics" for url in (settings.serving_url, settings.monitor_url, settings.trigger_url,
                                                     settings.model_server_url)}  # fmt: skip
            if settings is stacks[0][0]:
                expected.add(f"http://{deployed}/metrics")
            scraped: dict[str, dict[str, str]] = {}
            deadline = time.monotonic() + 30
            while set(scraped) != expected and time.monotonic() < deadline:  # service discovery takes a few seconds
                active = httpx.get(f"{settings.prometheus_url}/api/v1/targets", timeout=5).json()["data"]
                scraped = {t["scrapeUrl"]: t["labels"] for t in active["activeTargets"]}
                time.sleep(0.5)
            assert set(scraped) == expected
            assert scraped[f"{settings.model_server_url}/metrics"]["job"] == "driftloop-model-server"
            if settings is stacks[0][0]:  # the deployer's model servers, scraped as the PodMonitor would
                assert scraped[f"http://{deployed}/metrics"] == {"instance": deployed, "job": "driftloop-model-server",
                                                                 "version": "7"}  # fmt: skip
            config = (settings.home / "prometheus" / "prometheus.yml").read_text()
            assert "scrape_interval: 1s" in config and "evaluation_interval: 1s" in config
    finally:
        for manager in managers:
            for name in ("prometheus", "alertmanager"):
                manager.stop(service(name))
    assert os.environ.get("DRIFTLOOP_HOME") == stacks[-1][1]["DRIFTLOOP_HOME"]
