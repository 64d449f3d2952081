"""Pieces every ggen command shares: parameter types, exit codes, data-dir access, output."""
from __future__ import annotations

import sys
from typing import Any, NoReturn

import click
import orjson

from engine.clock import parse_duration_ms, parse_time_ref
from engine.datadir import DataDir
from engine.text import escape_controls

# Exit codes. 2 is click's usage error. Verification failures use 10-30 (see engine.receipts.verify FailureKind).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_ENGINE = 3
EXIT_NOT_FOUND = 4
EXIT_REFUSED = 5


class DurationParam(click.ParamType):
    """A duration such as 30s, 5m, 24h, 7d; the value is milliseconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration_ms(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class TimeRefParam(click.ParamType):
    """A point in time: ``30m``/``24h`` (ago), ``30m-ago``, ``now``, or an ISO date.

    The value is the raw text; resolve it with :func:`resolve_time` against the clock in use
    (the wall clock, or a live engine's clock), after validating here that it parses.
    """

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        try:
            parse_time_ref(text, 0)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return text


DURATION = DurationParam()
TIME_REF = TimeRefParam()


def resolve_time(text: str, now_ms: int) -> int:
    return parse_time_ref(text, now_ms)


def data_dir(ctx: click.Context | None = None) -> DataDir:
    """The data directory chosen by the top-level ``--data-dir`` option (or its defaults)."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    obj = root.obj or {}
    dd = obj.get("data_dir")
    if dd is None:
        dd = DataDir.resolve(None)
    return dd


def echo_json(value: Any) -> None:
    """Write one JSON document to stdout (UTF-8, indented, keys sorted)."""
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))
    sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print a one-line error to stderr and exit with ``code``."""
    click.echo(f"ggen: {message}", err=True)
    sys.exit(code)


def safe_text(value: object) -> str:
    """Text from logs, events or users, made safe for a terminal (see engine.text.escape_controls)."""
    return escape_controls(value)


def wall_now_ms() -> int:
    """The wall clock, for commands that read history (a live engine has its own clock)."""
    from engine.clock import WallClock

    return WallClock().now_ms()


def at_option(text: str | None, option: str = "--at") -> int:
    """Resolve an ``--at``-style time option against the wall clock; a bad value is a usage error."""
    now = wall_now_ms()
    if text is None:
        return now
    try:
        return resolve_time(text, now)
    except ValueError as exc:
        fail(f"{option}: {exc}", EXIT_USAGE)
