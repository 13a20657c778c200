"""``driftloop compile`` and ``driftloop lint``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from driftloop.errors import LintIssue

__all__ = ["compile_command", "lint_command"]


@click.command("compile")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff when the files on disk are stale.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: manifests/workflows/ of the checkout).",
)
@click.option(
    "--list", "list_only", is_flag=True, help="List the registered pipelines: files, steps and typed parameters."
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="With --check: build and validate even when no source changed since the last check.",
)
@click.pass_context
def compile_command(ctx: click.Context, check: bool, out_dir: Path | None, list_only: bool, no_cache: bool) -> None:
    """Compile every registered Hera pipeline to Argo YAML, validated, byte-for-byte reproducible.

    The output depends only on the code, never on your DRIFTLOOP_* variables, so the committed files are the
    same on every machine. Each compile validates everything against Argo's CRDs and semantic checks first
    and writes nothing when a check fails. It prints each file with what it holds, "wrote" or "unchanged"
    (a file whose bytes would not change is left alone, mtime included).

    \b
    Examples:
      driftloop compile                 # write manifests/workflows/*.yaml
      driftloop compile --check         # CI: exit 1 and show a diff when the committed YAML is stale
      driftloop compile --out /tmp/wf   # write elsewhere
      driftloop compile --list
    """
    from driftloop.config import get_settings, repo_root
    from workflows.compiler._check_cache import cached_check, record_check, source_key

    settings = get_settings()
    out_dir = out_dir or repo_root() / "manifests" / "workflows"
    if list_only:
        _list_pipelines()
        return
    key = source_key(repo_root(), settings.shared_dir, out_dir) if check else ""
    cached = None if no_cache or not check else cached_check(settings.home, key, out_dir)
    if cached is not None:
        click.echo(
            f"{_up_to_date(out_dir)} in {out_dir} are up to date ({cached} documents validated by the last full"
            " check; no source, CRD or library changed since: --no-cache checks again)"
        )
        return
    from workflows.compiler._build import (  # Hera takes seconds to import: only here
        build_manifests,
        diff_manifests,
        validate_manifests,
        write_manifests,
    )

    manifests = build_manifests()
    count = validate_manifests(manifests)
    if check:
        diff = diff_manifests(manifests, out_dir)
        if diff:
            click.echo(diff, nl=False)
            click.secho(f"error: the manifests in {out_dir} are stale (or edited by hand)", fg="red", err=True)
            click.echo("  hint: run `make compile` (driftloop compile) and commit the result", err=True)
            ctx.exit(1)
        record_check(settings.home, key, out_dir, count)
        click.echo(f"{len(manifests)} file(s) in {out_dir} are up to date ({count} documents validated)")
        return
    before = {m.filename: _text(out_dir / m.filename) for m in manifests}
    written, removed = write_manifests(manifests, out_dir)
    for manifest in manifests:
        path = out_dir / manifest.filename
        what = ", ".join(f"{doc.get('kind')} {_name(doc)}" for doc in manifest.documents)
        old = before[manifest.filename]
        if path not in written:
            click.echo(f"unchanged {path} ({what})")
        elif old is None:
            click.echo(f"created {path} ({what})")
        else:
            click.echo(f"wrote {path} ({what}): {_changed_lines(old, manifest.render())}")
    for path in removed:
        click.echo(f"removed {path} (no pipeline produces it any more)")
    click.echo(f"{count} documents validated against Argo's CRDs and semantic checks")


def _up_to_date(out_dir: Path) -> str:
    return f"{len(list(out_dir.glob('*.y*ml')))} file(s)"


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _changed_lines(old: str, new: str) -> str:
    """``+3 -1 lines`` between two versions of a file."""
    import difflib

    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return f"+{added} -{removed} lines"


def _name(document: dict[str, Any]) -> str:
    metadata = document.get("metadata", {})
    return str(metadata.get("name") or metadata.get("generateName", "") + "*")


def _list_pipelines() -> None:
    """Each pipeline with its files, steps and typed parameters, read off what it builds (never a copied list)."""
    from workflows.compiler._build import build_manifests
    from workflows.pipelines import list_pipelines

    files = [m.filename for m in build_manifests()]
    for pipeline in list_pipelines():
        template = pipeline.template()
        click.echo(f"{pipeline.name}: {pipeline.description}")
        click.echo(f"  files: {', '.join(f for f in files if f.startswith(pipeline.name + '.'))}")
        click.echo(f"  steps: {', '.join(s.name for s in pipeline.steps(template))}")
        params = pipeline.parameters(template).values()
        click.echo(f"  parameters: {', '.join(f'{p.name} ({p.type}, default {p.default!r})' for p in params)}")
    click.echo(f"every pipeline: {', '.join(f for f in files if f.startswith('driftloop-'))}")


@click.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--strict-templates",
    is_flag=True,
    help="Also check WorkflowTemplates' {{workflow.parameters.*}} and entrypoint inputs against their own arguments.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON list.")
@click.pass_context
def lint_command(ctx: click.Context, paths: tuple[Path, ...], strict_templates: bool, as_json: bool) -> None:
    """Validate Argo YAML: the CRD schema (unknown fields, types) and Argo's semantic checks.

    Files may hold several documents; folders are searched for *.yaml / *.yml. Files linted together can
    refer to each other (a templateRef resolves to a WorkflowTemplate given among them); a templateRef to a
    template that is not given is skipped, like `argo lint --offline`. Exits 1 when anything is found.

    \b
    Checks: schema; unknown template/templateRef; DAG cycles; depends/dependencies naming unknown tasks;
    malformed depends; {{inputs.parameters.x}}, {{tasks.t.outputs.parameters.y}}, {{steps.s...}},
    {{workflow.parameters.z}} that do not resolve; required inputs not supplied; duplicate names;
    GPU tasks without a toleration; bad cron schedules or time zones; duplicate YAML keys;
    Workflows without name or generateName; unknown kinds (other Kubernetes objects shipped with workflows,
    such as ConfigMaps and Secrets, are accepted unchecked); empty files and folders with no YAML.

    \b
    Examples:
      driftloop lint manifests/workflows
      driftloop lint my-workflow.yaml other.yaml --json
    """
    # imported here, not at the top: a cached `compile --check` answers without loading the linter (jsonschema)
    from workflows.spec.lint import expand_paths, lint_paths

    files = expand_paths(paths)
    issues: list[LintIssue] = lint_paths(paths, strict_templates=strict_templates)
    if as_json:
        click.echo(json.dumps([{**issue.__dict__} for issue in issues], indent=2))
    else:
        for issue in issues:
            click.echo(str(issue))
    if issues:
        click.secho(f"{len(issues)} finding(s) in {len(files)} file(s)", fg="red", err=True)
        ctx.exit(1)
    if not as_json:
        click.echo(f"{len(files)} file(s) lint clean")
