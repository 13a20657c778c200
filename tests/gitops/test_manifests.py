"""Every cluster manifest and every rendered kustomize overlay validates strictly; planted errors are named;
no secret value anywhere; the pins and the Dockerfile agree with the code (the AnalysisTemplate: test_analysis.py);
the serving pod is wired the way the code expects (in-process capture + shipper, ports, spool, probes)."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from driftloop.config import repo_root
from monitors.sidecar.cli import parse_listen, scoring_server_command, ship_command
from workflows.gitops.pin import ENVIRONMENTS, ModelPin
from workflows.gitops.validate import kustomize_dirs, render, validate_tree

ROOT = repo_root()
MANIFESTS = ROOT / "manifests"


def test_every_manifest_and_every_rendered_overlay_validates() -> None:
    assert validate_tree(MANIFESTS) == []
    rendered = {str(d.relative_to(MANIFESTS)) for d in kustomize_dirs(MANIFESTS)}
    assert {"serving/overlays/staging", "serving/overlays/production", "argocd", "argo"} <= rendered
    kinds = {doc["kind"] for doc in render(MANIFESTS / "serving/overlays/production")}
    assert {"Rollout", "AnalysisTemplate", "Service", "PodDisruptionBudget", "ConfigMap"} <= kinds


def test_planted_errors_name_file_document_and_path(tmp_path: Path) -> None:
    tree = tmp_path / "manifests"
    shutil.copytree(MANIFESTS / "serving", tree / "serving")
    rollout = tree / "serving/base/rollout.yaml"
    text = rollout.read_text()
    text = text.replace("  replicas: 2\n", "  replicas: two\n")  # wrong type (CRD)
    text = text.replace("      terminationGracePeriodSeconds: 30\n", "      terminationGracePeriod: 30\n")  # unknown
    rollout.write_text(text)
    services = tree / "serving/base/services.yaml"
    services.write_text(services.read_text().replace("      port: 80\n", "", 1))  # missing required (core)
    issues = [str(issue) for issue in validate_tree(tree)]
    assert any("serving/base/rollout.yaml#0 (Rollout credit-risk)" in i and "spec.replicas" in i for i in issues)
    assert any("spec.template.spec" in i and "'terminationGracePeriod'" in i for i in issues)
    assert any("serving/base/services.yaml#0 (Service credit-risk-stable)" in i and "spec.ports[0]" in i
               and "'port' is a required property" in i for i in issues)  # fmt: skip
    overlay = [i for i in issues if i.startswith("kustomize build manifests/serving/overlays/production")]
    assert any("spec.replicas" not in i and "terminationGracePeriod" in i for i in overlay)  # rendered output too


_SECRET_NAME = re.compile(r"(password|secret|token|access[-_]?key|api[-_]?key|credential)", re.I)


def _secret_mount_paths(doc: dict) -> set[str]:
    """mountPaths of the volumes of a pod template (or pod) that come from a Secret."""
    spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or doc.get("spec") or {}
    if not isinstance(spec, dict):
        return set()
    secret_volumes = {v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict) and "secret" in v}
    return {
        str(mount["mountPath"]).rstrip("/")
        for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
        for mount in container.get("volumeMounts") or []
        if mount.get("name") in secret_volumes
    }


def _env_entries(node: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if isinstance(node, dict):
        if isinstance(node.get("env"), list):
            found += [entry for entry in node["env"] if isinstance(entry, dict)]
        for value in node.values():
            found += _env_entries(value)
    elif isinstance(node, list):
        for value in node:
            found += _env_entries(value)
    return found


def test_no_secret_value_in_any_manifest() -> None:
    documents = []
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        text = path.read_text()
        assert not re.search(r"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY", text), path
        documents += [(path, doc) for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
    for d in kustomize_dirs(MANIFESTS):
        documents += [(d, doc) for doc in render(d)]
    assert len(documents) > 20
    for path, doc in documents:
        assert doc.get("kind") != "Secret", f"{path}: Secrets are created out of band, never committed"
        secret_mounts = _secret_mount_paths(doc)
        for entry in _env_entries(doc):
            name = str(entry.get("name", ""))
            if not _SECRET_NAME.search(name):
                continue
            if name.endswith("_FILE"):  # a file reference: it must point into a mounted Secret volume
                assert any(str(entry.get("value", "")).startswith(m + "/") for m in secret_mounts), (path, entry)
                continue
            assert "value" not in entry and "secretKeyRef" in entry.get("valueFrom", {}), (path, entry)
    artifact = yaml.safe_load((MANIFESTS / "argo/artifact-repositories.configmap.yaml").read_text())
    s3 = yaml.safe_load(artifact["data"]["minio"])["s3"]
    assert set(s3["accessKeySecret"]) == {"name", "key"} and set(s3["secretKeySecret"]) == {"name", "key"}


def test_committed_pins_are_the_generated_placeholders() -> None:
    for env in ENVIRONMENTS:
        path = MANIFESTS / "serving/overlays" / env / "model-pin.yaml"
        assert path.read_text() == ModelPin.unpinned(env, "credit-risk").to_yaml()


@pytest.mark.parametrize("dockerfile", [ROOT / "Dockerfile"])
def test_dockerfile_matches_the_project_layout(dockerfile: Path) -> None:
    lines = [line.strip() for line in dockerfile.read_text().splitlines()]
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    sources = [source for sources in copies for source in sources]
    assert sources, "no COPY line"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the project"
    packages = set(__import__("tomllib").loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                   ["packages"]["find"]["include"])  # fmt: skip
    assert {p.rstrip("*") + "/" for p in packages} <= set(sources)  # every installed package is copied
    scripts = __import__("tomllib").loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert 'ENTRYPOINT ["driftloop"]' in lines and "driftloop" in scripts
    user = [line for line in lines if line.startswith("USER ")]
    assert user and not user[-1].split()[1].startswith(("root", "0"))  # non-root
    assert next(line for line in lines if line.startswith("FROM ")).startswith("FROM nvidia/cuda:")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is installed by `make system`")
def test_analysis_queries_are_valid_promql(tmp_path: Path) -> None:
    import subprocess

    template = yaml.safe_load((MANIFESTS / "serving/base/analysis-template.yaml").read_text())
    args = {"namespace": "driftloop-production", "canary-hash": "6d4f9c7b8"}
    rules = []
    for metric in template["spec"]["metrics"]:
        query = metric["provider"]["prometheus"]["query"]
        for name, value in args.items():
            query = query.replace("{{args." + name + "}}", value)
        assert "{{" not in query, metric["name"]
        rules.append({"record": "driftloop:analysis_" + metric["name"].replace("-", "_"), "expr": query})
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "analysis", "rules": rules}]}))
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(rules)} rules found" in checked.stdout


def test_argocd_repo_url_has_one_source_that_kustomize_copies_everywhere() -> None:
    source = yaml.safe_load((MANIFESTS / "argocd" / "gitops-source.yaml").read_text())["data"]
    rendered = render(MANIFESTS / "argocd")
    apps = [doc for doc in rendered if doc["kind"] == "Application"]
    project = next(doc for doc in rendered if doc["kind"] == "AppProject")
    assert len(apps) == len(ENVIRONMENTS) and project["spec"]["sourceRepos"] == [source["repoURL"]]
    assert {(a["spec"]["source"]["repoURL"], a["spec"]["source"]["targetRevision"]) for a in apps} == {
        (source["repoURL"], source["targetRevision"])
    }
    assert all(doc["kind"] != "ConfigMap" for doc in rendered)  # local-config: never applied to the cluster


def _flags(command: click.Command, argv: list[str]) -> dict[str, Any]:
    """``argv`` parsed by the real CLI's option parser (no type checks: the paths exist only in the pod)."""
    options, extra, _ = command.make_parser(click.Context(command)).parse_args(list(argv))
    assert not extra, f"stray arguments {extra}"
    missing = [p.name for p in command.params if p.required and p.name not in options]
    assert not missing, f"missing required options {missing}"
    return options


def _mounted(container: dict[str, Any], volume: str, path: str) -> bool:
    return any(m["name"] == volume and (path + "/").startswith(m["mountPath"].rstrip("/") + "/")
               for m in container.get("volumeMounts", []))  # fmt: skip


def _serving_pod_problems(documents: list[dict[str, Any]]) -> list[str]:
    """What is miswired in the rendered serving manifests plus the ServiceMonitors; empty when all is well."""
    problems: list[str] = []

    def check(ok: object, problem: str) -> None:
        if not ok:
            problems.append(problem)

    rollout = next(doc for doc in documents if doc["kind"] == "Rollout")
    pod = rollout["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    if sorted(containers) != ["model-server", "shipper"]:
        return [f"containers {sorted(containers)}, expected model-server and shipper"]
    server, shipper = containers["model-server"], containers["shipper"]
    try:
        assert server["command"][:2] == ["driftloop", "scoring-server"], server["command"]
        assert shipper["command"][:2] == ["driftloop", "ship"], shipper["command"]
        served = _flags(scoring_server_command, server["command"][2:])
        shipped = _flags(ship_command, shipper["command"][2:])
    except (AssertionError, click.UsageError) as exc:
        return [f"command: {exc}"]
    ports = {p["name"]: p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}
    check(ports.get("http") == parse_listen(served["listen"])[1] and {p["name"] for p in server["ports"]} == {"http"},
          f"the scoring server listens on {served['listen']}, its `http` port is {ports.get('http')}")  # fmt: skip
    probe = server.get("readinessProbe", {}).get("httpGet", {})
    check((probe.get("path"), probe.get("port")) == ("/ping", "http"), f"model-server readiness probe {probe}")
    volumes = {v["name"]: v for v in pod["volumes"]}
    check("emptyDir" in volumes.get("state", {}), "the spool volume `state` is not an emptyDir")
    check(served["spool_dir"] == shipped["spool_dir"], f"spools differ: {served['spool_dir']} / {shipped['spool_dir']}")
    for container, flags in ((server, served), (shipper, shipped)):
        name = container["name"]
        check(_mounted(container, "state", flags["spool_dir"]), f"{name}: --spool {flags['spool_dir']} not on `state`")
        check(
            _mounted(container, "model-pin", flags.get("pin_file", "?")), f"{name}: --pin not on the model-pin volume"
        )
        check(container["securityContext"].get("readOnlyRootFilesystem") is True, f"{name}: writable root filesystem")
        check(_mounted(container, "tmp", "/tmp"), f"{name}: no /tmp mount")
    check(_mounted(server, "models", served["model_uri"]), f"--model-uri {served['model_uri']} is not on `models`")
    check("DRIFTLOOP_LAKE_URI" in {e["name"] for e in shipper.get("env", [])}, "the shipper has no DRIFTLOOP_LAKE_URI")
    listen = shipped.get("metrics_listen")
    check(
        listen and ports.get("ship-metrics") == parse_listen(listen)[1], f"ship --metrics-listen {listen} vs its port"
    )
    service_ports = set()
    for service in (doc for doc in documents if doc["kind"] == "Service"):
        for port in service["spec"]["ports"]:
            service_ports.add(port["name"])
            check(
                port["targetPort"] in ports, f"Service {service['metadata']['name']}: no pod port {port['targetPort']}"
            )
    monitor = next(
        d for d in documents if d["kind"] == "ServiceMonitor" and d["metadata"]["name"] == "driftloop-sidecar"
    )
    for endpoint in monitor["spec"]["endpoints"]:
        check(endpoint["port"] in service_ports, f"ServiceMonitor endpoint port {endpoint['port']} is on no Service")
    return problems


def _serving_documents() -> list[dict[str, Any]]:
    monitors = yaml.safe_load_all((MANIFESTS / "monitoring/driftloop.servicemonitors.yaml").read_text())
    return [*render(MANIFESTS / "serving/overlays/production"), *monitors]


def test_the_serving_pod_captures_in_process_and_is_wired_the_way_the_code_expects() -> None:
    documents = _serving_documents()
    assert _serving_pod_problems(documents) == []
    pod = next(doc for doc in documents if doc["kind"] == "Rollout")["spec"]["template"]["spec"]
    assert all("sidecar" not in c["command"] for c in pod["containers"])  # the proxy only in the documented comment

    def broken(change: Any) -> list[str]:
        docs = copy.deepcopy(documents)
        rollout = next(doc for doc in docs if doc["kind"] == "Rollout")
        change(docs, {c["name"]: c for c in rollout["spec"]["template"]["spec"]["containers"]})
        return _serving_pod_problems(docs)

    def replace_flag(container: dict[str, Any], flag: str, value: str) -> None:
        command = container["command"]
        command[command.index(flag) + 1] = value

    assert any("listens on 0.0.0.0:9999" in p
               for p in broken(lambda d, c: replace_flag(c["model-server"], "--listen", "0.0.0.0:9999")))  # fmt: skip
    assert any("spools differ" in p for p in broken(lambda d, c: replace_flag(c["shipper"], "--spool", "/tmp/s")))
    assert broken(lambda d, c: c["model-server"]["command"].extend(["--upstream", "x"])) == [
        "command: No such option '--upstream'."
    ]
    assert any("readiness probe" in p
               for p in broken(lambda d, c: c["model-server"]["readinessProbe"]["httpGet"].update(port=8081)))  # fmt: skip
    assert any("ServiceMonitor endpoint port ship-metrics" in p for p in broken(
        lambda d, c: [s["spec"].update(ports=s["spec"]["ports"][:1]) for s in d if s["kind"] == "Service"]))  # fmt: skip
    assert any("no /tmp mount" in p for p in broken(lambda d, c: c["shipper"].update(volumeMounts=[
        m for m in c["shipper"]["volumeMounts"] if m["name"] != "tmp"])))  # fmt: skip
