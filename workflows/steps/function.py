"""A step as one typed Python function: its StepContract is read off the signature.

    @function_step("count-chars", outputs={"length": int})
    def count_chars(message: Annotated[str, "The text."], times: int = 1) -> dict[str, Any]:
        return {"length": len(message) * times}

    if __name__ == "__main__":
        count_chars.main()

``count_chars.contract`` is an ordinary contract (inputs ``message: str`` required, ``times: int`` default 1,
output ``length: int``), so a pipeline wires it like any other step and ``python -m <module> --message hi`` runs it
through ``run_step``: flags parsed as their types, outputs checked against the contract. Supported types are those
of the contract: ``str``, ``int``, ``float``, ``bool`` and ``dict``/``list`` (JSON).
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftloop.errors import ConfigError
from workflows.steps._io import run_step
from workflows.steps.contract import Param, ParamType, StepContract, render_value

__all__ = ["FunctionStep", "function_step"]

_TYPES: dict[Any, ParamType] = {str: "str", int: "int", float: "float", bool: "bool", dict: "json", list: "json"}


def _param_type(where: str, annotation: Any) -> tuple[ParamType, str]:
    description = ""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extras = typing.get_args(annotation)
        description = next((e for e in extras if isinstance(e, str)), "")
    annotation = typing.get_origin(annotation) or annotation  # list[str] -> list
    if annotation not in _TYPES:
        raise ConfigError(
            f"{where} is annotated {annotation!r}, which is not a step parameter type",
            hint="use str, int, float, bool, dict or list (JSON); files are Artifacts, passed by a StepContract",
        )
    return _TYPES[annotation], description


@dataclass(frozen=True)
class FunctionStep:
    """A function and the contract derived from it; call it like the function, run it with ``main()``."""

    contract: StepContract
    function: Callable[..., dict[str, Any]]

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.function(*args, **kwargs)

    def main(self, argv: Sequence[str] | None = None) -> None:
        """The entry point of ``python -m <module>``: flags in, outputs to ``/tmp/outputs``."""
        run_step(self.contract, sys.argv[1:] if argv is None else argv, lambda _, flags: self.function(**flags))


def function_step(
    name: str, *, outputs: Mapping[str, type], description: str | None = None, gpu: bool = False
) -> Callable[[Callable[..., dict[str, Any]]], FunctionStep]:
    """Decorator: the contract of step `name` from the function's typed parameters and the `outputs` mapping."""

    def wrap(function: Callable[..., dict[str, Any]]) -> FunctionStep:
        module = sys.modules.get(function.__module__)
        spec = getattr(module, "__spec__", None)  # under `python -m x`, __module__ is "__main__"; the spec says x
        hints = typing.get_type_hints(function, include_extras=True)
        inputs = []
        for parameter in inspect.signature(function).parameters.values():
            where = f"parameter {parameter.name!r} of step {name!r}"
            kind, text = _param_type(where, hints.get(parameter.name, inspect.Parameter.empty))
            default = None if parameter.default is inspect.Parameter.empty else render_value(parameter.default)
            inputs.append(Param(parameter.name.replace("_", "-"), text or parameter.name, default, kind))
        declared = [Param(o, o, None, _param_type(f"output {o!r} of step {name!r}", t)[0]) for o, t in outputs.items()]
        contract = StepContract(
            name=name,
            module=spec.name if spec is not None else function.__module__,
            description=description or (inspect.getdoc(function) or name).splitlines()[0],
            inputs=tuple(inputs),
            outputs=tuple(declared),
            gpu=gpu,
        )
        return FunctionStep(contract, function)

    return wrap
