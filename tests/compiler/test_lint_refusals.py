"""`driftloop lint` pointed at the wrong thing fails (rc 1) and names it: a CI job cannot go green by mistake."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from tests._support import driftloop
from workflows.compiler.cli import lint_command

GOOD = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: ok-}\nspec:\n  entrypoint: main\n" \
       "  templates:\n  - name: main\n    container: {image: busybox, command: [echo, hi]}\n"  # fmt: skip


def test_wrong_kinds_empty_files_and_empty_folders_are_errors(tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text(GOOD.replace("kind: Workflow", "kind: Workfow"))
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "dashes.yaml").write_text("---\n# nothing here\n---\n")
    (tmp_path / "no-yaml").mkdir()
    (tmp_path / "no-yaml" / "notes.txt").write_text("not a manifest")
    paths = [str(tmp_path / name) for name in ("typo.yaml", "empty.yaml", "dashes.yaml", "no-yaml")]

    result = driftloop({**os.environ}, "lint", *paths)
    assert result.returncode == 1 and "lint clean" not in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"{paths[0]}: kind: unknown kind 'Workfow': did you mean 'Workflow'?") for line in lines)
    assert f"{paths[1]}: (file): no YAML document in this file (empty, or only ---) [yaml]" in lines
    assert f"{paths[2]}: (file): no YAML document in this file (empty, or only ---) [yaml]" in lines
    assert f"{paths[3]}: (folder): no *.yaml or *.yml file in this folder [yaml]" in lines
    for path in paths:  # each one alone fails too
        assert CliRunner().invoke(lint_command, [path]).exit_code == 1, path


def test_a_workflow_with_its_configmap_still_lints_clean(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(GOOD + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")
    result = CliRunner().invoke(lint_command, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 file(s) lint clean" in result.output
    other = tmp_path / "deploy.yaml"
    other.write_text("apiVersion: apps/v1\nkind: Depolyment\nmetadata: {name: x}\n")
    refused = CliRunner().invoke(lint_command, [str(other)])
    assert refused.exit_code == 1 and "unknown kind 'Depolyment'" in refused.output
