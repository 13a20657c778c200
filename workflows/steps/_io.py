"""What every step entry point shares: flags parsed from the contract, output/input locations, error exit.

On a cluster a step writes to ``/tmp/outputs`` and reads ``/tmp/inputs`` (the contract); tests and local runs point
them elsewhere with ``DRIFTLOOP_STEP_OUTPUT_DIR`` / ``DRIFTLOOP_STEP_INPUT_DIR``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from driftloop.errors import ConfigError, DriftloopError
from workflows.steps.contract import INPUT_DIR, OUTPUT_DIR, Artifact, StepContract, parse_value, render_value, step

__all__ = ["input_artifact", "input_dir", "output_artifact", "output_dir", "parse_flags", "run_step", "write_outputs"]


def output_dir() -> Path:
    return Path(os.environ.get("DRIFTLOOP_STEP_OUTPUT_DIR") or OUTPUT_DIR)


def input_dir() -> Path:
    return Path(os.environ.get("DRIFTLOOP_STEP_INPUT_DIR") or INPUT_DIR)


def _relocated(contract_path: str) -> Path:
    """A contract path (/tmp/outputs/x or /tmp/inputs/x) under the directory in force."""
    path = Path(contract_path)
    if contract_path.startswith(OUTPUT_DIR + "/"):
        return output_dir() / path.relative_to(OUTPUT_DIR)
    if contract_path.startswith(INPUT_DIR + "/"):
        return input_dir() / path.relative_to(INPUT_DIR)
    return path


def output_artifact(contract: StepContract, name: str) -> Path:
    for artifact in contract.output_artifacts:
        if artifact.name == name:
            target = _relocated(artifact.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            return target
    raise _no_artifact(contract, name, "output", contract.output_artifacts)


def input_artifact(contract: StepContract, name: str) -> Path:
    for artifact in contract.input_artifacts:
        if artifact.name == name:
            return _relocated(artifact.path)
    raise _no_artifact(contract, name, "input", contract.input_artifacts)


def _no_artifact(contract: StepContract, name: str, kind: str, artifacts: Sequence[Artifact]) -> ConfigError:
    return ConfigError(
        f"step {contract.name!r} has no {kind} artifact {name!r}",
        hint=f"it has: {', '.join(a.name for a in artifacts) or 'none'} (declare it in the step's StepContract)",
    )


def write_outputs(values: dict[str, object]) -> None:
    """Each output parameter to ``<output dir>/<name>``, the file Argo reads after the step exits."""
    directory = output_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (directory / name).write_text(render_value(value))


def parse_flags(contract: StepContract, argv: Sequence[str] | None) -> dict[str, Any]:
    """Exactly the contract's ``--flags``, each read as its type; python-style names (``model-name`` -> ``model_name``).

    A value of the wrong type raises ConfigError ("epochs must be an integer (got 'abc')"): a step checks its inputs
    itself, because a Workflow submitted by hand (or by another tool) never went through ``driftloop submit``.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {contract.module}", description=contract.description)
    for param in contract.inputs:
        default = f" (default: {param.default!r})" if param.default is not None else " (required)"
        parser.add_argument(
            f"--{param.name}",
            dest=param.name.replace("-", "_"),
            default=param.default,
            required=param.default is None,
            help=param.description + default,
        )
    raw = vars(parser.parse_args(argv))
    return {
        key: parse_value(param, value) if value is not None else None
        for param, (key, value) in zip(contract.inputs, raw.items(), strict=True)
    }


def _check_outputs(contract: StepContract, outputs: dict[str, Any]) -> None:
    """Exactly the contract's output parameters, each of its type: what later tasks were promised at build time."""
    declared = {p.name: p for p in contract.outputs}
    unknown, missing = sorted(set(outputs) - set(declared)), sorted(set(declared) - set(outputs))
    if unknown or missing:
        raise ConfigError(
            f"step {contract.name!r} returned outputs {sorted(outputs)}"
            + (f"; not in its contract: {unknown}" if unknown else "")
            + (f"; missing: {missing}" if missing else ""),
            hint=f"return exactly the StepContract's outputs: {', '.join(declared) or 'none'}",
        )
    for name, value in outputs.items():
        parse_value(declared[name], render_value(value))


def run_step(
    step_or_name: StepContract | str,
    argv: Sequence[str] | None,
    body: Callable[[StepContract, dict[str, Any]], dict[str, Any]],
) -> None:
    """Parse flags, run ``body`` and write its outputs; a DriftloopError exits 1 with the message and hint.

    `step_or_name` is the step's contract (a step of any pipeline) or the name of one a registered pipeline uses.
    """
    try:
        contract = step(step_or_name) if isinstance(step_or_name, str) else step_or_name
        flags = parse_flags(contract, argv)
        outputs = body(contract, flags)
        _check_outputs(contract, outputs)
    except DriftloopError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        raise SystemExit(1) from None
    write_outputs(outputs)
    for key, value in outputs.items():
        print(f"{key}={render_value(value)}")
