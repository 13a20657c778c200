"""Command-line flags whose default is a setting of ``driftloop.config``: one source, the flag overrides it.

A flag declared with :func:`setting_option` takes its default from ``get_settings()`` when the command runs (so
``DRIFTLOOP_<NAME>`` applies to a hand-run command exactly as to the stack's), and ``--help`` shows the value in
force and where it came from, e.g. ``[default: (5, set by DRIFTLOOP_MONITOR_INTERVAL)]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from driftloop.config import PREFIX, SETTING_DOCS, get_settings
from driftloop.errors import ConfigError

__all__ = ["SettingOption", "setting_default", "setting_option"]


def setting_default(setting: str, convert: Callable[[Any], Any] | None = None) -> tuple[Any, str]:
    """The value of ``setting`` in force (after ``convert``) and a phrase saying where it came from."""
    variable = PREFIX + setting.upper()
    settings = get_settings()
    value = getattr(settings, setting)
    origin = f"set by {variable}" if settings.source_of(setting) == "env" else f"the built-in default of {variable}"
    return (convert(value) if convert else value), origin


class SettingOption(click.Option):
    """A ``click.Option`` whose default is read from the settings at parse (and ``--help``) time."""

    def __init__(self, *args: Any, setting: str, convert: Callable[[Any], Any] | None = None, **kwargs: Any) -> None:
        if setting not in SETTING_DOCS:
            raise ConfigError(f"no setting named {setting!r}", hint=f"one of {sorted(SETTING_DOCS)}")
        self.setting = setting
        self.convert = convert
        kwargs["default"] = lambda: setting_default(setting, convert)[0]
        kwargs["show_default"] = True
        super().__init__(*args, **kwargs)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        try:
            value, origin = setting_default(self.setting, self.convert)
            self.show_default = f"{value:g}, {origin}" if isinstance(value, float) else f"{value}, {origin}"
        except ConfigError as exc:  # --help must still work with a bad variable: say what is wrong
            self.show_default = f"invalid {PREFIX}{self.setting.upper()}: {exc.message}"
        return super().get_help_record(ctx)


def setting_option(*param_decls: str, setting: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@click.option(...)`` whose default is the setting ``setting`` (see the module docstring)."""
    return click.option(*param_decls, cls=SettingOption, setting=setting, **kwargs)
