"""Every cluster manifest and every rendered kustomize overlay validates strictly; planted errors are named;
no secret value anywhere; the pins and the Dockerfile agree with the code (the AnalysisTemplate: test_analysis.py)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from driftloop.config import repo_root
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
