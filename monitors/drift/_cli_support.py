"""What ``driftloop drift`` checks before and after it computes, and its JSON error output.

A drift gate in CI must never pass by accident: an empty reference, a per-column option naming a column
that does not exist, or a comparison in which no column could be tested are errors, and under ``--json`` an
error is a JSON object on stdout (with a non-zero exit status), so a script parsing stdout sees it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from driftloop.errors import DataContractError, DriftloopError

if TYPE_CHECKING:
    from monitors.drift._compute import DriftOptions, DriftResult
    from monitors.drift.reference import ReferenceProfile

__all__ = ["JsonErrorsCommand", "check_inputs", "check_result"]


def _emit(message: str, hint: str | None, kind: str) -> None:
    click.echo(json.dumps({"error": {"type": kind, "message": message, "hint": hint}}, indent=2))


class JsonErrorsCommand(click.Command):
    """Under ``--json`` every error — a bad flag included — is ``{"error": {...}}`` on stdout, rc ≠ 0."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        wants_json = "--json" in args
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if not wants_json:
                raise
            _emit(exc.format_message(), f"see `driftloop {info_name} --help`", type(exc).__name__)
            raise click.exceptions.Exit(exc.exit_code) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DriftloopError as exc:
            if not ctx.params.get("as_json"):
                raise
            _emit(exc.message, exc.hint, type(exc).__name__)
            raise click.exceptions.Exit(exc.exit_code) from None
        except click.ClickException as exc:
            if not ctx.params.get("as_json"):
                raise
            _emit(exc.format_message(), None, type(exc).__name__)
            raise click.exceptions.Exit(exc.exit_code) from None


def check_inputs(profile: ReferenceProfile, options: DriftOptions, reference: str) -> None:
    """Refuse an empty reference and per-column options that name no column of it."""
    from monitors.drift._compute import check_column_options  # pandas: only when the command runs

    if profile.rows == 0:
        raise DataContractError(
            f"the reference {reference} has no rows: there is nothing to compare the current data with",
            hint="give the data the model was trained on (or its saved profile directory)",
        )
    check_column_options(profile, options)


def check_result(
    result: DriftResult, profile: ReferenceProfile, selected: list[str] | None, fail_on_drift: bool
) -> DriftResult:
    """Add the columns the reference could not profile (lists, text…) to ``skipped``, so they are said;
    with ``--fail-on-drift``, a comparison in which no column was tested is an error, not a pass."""
    from monitors.drift._compute import columns_listing

    said = {name: f"in the reference: {why}" for name, why in profile.skipped.items() if selected is None}
    result = replace(result, skipped={**said, **result.skipped})
    if fail_on_drift and not result.columns:
        raise DataContractError(
            "no column could be tested, so --fail-on-drift cannot decide",
            columns=list(result.skipped),
            hint=columns_listing(profile),
        )
    return result
