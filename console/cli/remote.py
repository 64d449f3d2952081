"""What every command that talks to the live engine shares: the socket call, one-line errors,
the confirm/--yes/--actor rules for changes, and plain aligned text output.

Commands that change something go through :func:`apply`: the engine plans the change first
(arguments and preconditions checked, nothing applied), then a person confirms on a terminal, or
``--yes`` (also ``GGEN_YES=1``) confirms for scripts; without a terminal and without ``--yes`` the
command refuses. The engine applies the change through its safety governor and writes a signed
receipt naming ``--actor`` (default: the login name, or ``GGEN_ACTOR``).
"""
from __future__ import annotations

import getpass
import os
import sys
from typing import Any, Callable

import click

from console.cli.common import EXIT_FAILED, EXIT_NO_ENGINE, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE, data_dir, echo_json, fail, safe_text

# Engine error codes -> exit codes.
EXIT_FOR_CODE = {
    "bad_request": EXIT_USAGE,
    "unknown_op": EXIT_USAGE,
    "bad_argument": EXIT_USAGE,
    "not_found": EXIT_NOT_FOUND,
    "refused": EXIT_REFUSED,
    "failed": EXIT_FAILED,
    "internal": EXIT_FAILED,
}

# Request argument -> the flag people typed, where the two differ.
FLAG_OF_ARG = {
    "duration_ms": "--duration",
    "timeout_ms": "--timeout",
    "from": "--from",
    "fault": "--fault",
    "fault_id": "--id",
    "params": "--param",
    "operation": "command",
}


# ----------------------------------------------------------------------------- one-line usage errors
def _usage_error(exc: click.UsageError) -> None:
    ctx = exc.ctx
    where = ctx.command_path.removeprefix("ggen").strip() if ctx is not None else ""
    click.echo(f"ggen: {safe_text(where) + ': ' if where else ''}{safe_text(exc.format_message())}", err=True)
    sys.exit(EXIT_USAGE)


class Command(click.Command):
    """A click command whose usage errors are one line on stderr (exit 2)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            _usage_error(exc)
            raise


class Group(click.Group):
    """A click group with one-line usage errors (its sub-commands get them too)."""

    command_class = Command

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            _usage_error(exc)
            raise

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            _usage_error(exc)
            raise


Group.group_class = Group


# ----------------------------------------------------------------------------- talking to the engine
def call(op: str, args: dict[str, Any] | None = None, *, timeout: float = 30.0) -> Any:
    """Run one operation on the data directory's live engine, or exit with a one-line error."""
    from engine.control.client import ControlClient, ControlError, NoEngine

    dd = data_dir()
    try:
        return ControlClient(dd.control_socket_path, timeout).call(op, args)
    except NoEngine:
        fail(f"no engine is running on {dd.root} (start one with ggen console or ggen watch)", EXIT_NO_ENGINE)
    except ControlError as exc:
        msg = safe_text(exc.message)
        if exc.arg:
            flag = FLAG_OF_ARG.get(exc.arg, "--" + exc.arg.replace("_", "-"))
            msg = f"{flag}: {msg}"
        fail(msg, EXIT_FOR_CODE.get(exc.code, EXIT_FAILED))
    except OSError as exc:
        fail(f"cannot talk to the engine on {dd.root}: {exc.strerror or exc}", EXIT_FAILED)


def login_name() -> str:
    for env in ("GGEN_ACTOR",):
        v = os.environ.get(env)
        if v:
            return v
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER") or "unknown"


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(fn)


def change_options(fn: Callable[..., Any] | None = None, *, incident: bool = True) -> Any:
    """The options of every command that changes the live system (``incident=False`` leaves out
    --incident-id/--no-incident for commands that name their incident themselves)."""

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        opts = [
            click.option("--yes", "-y", is_flag=True, envvar="GGEN_YES", help="Do not ask for confirmation (also GGEN_YES=1). Required when stdin is not a terminal."),
            click.option("--actor", default=None, metavar="NAME", help="Who is acting (recorded in the receipt). Default: GGEN_ACTOR or the login name."),
        ]
        if incident:
            opts += [
                click.option("--incident-id", default=None, metavar="ID", help="Record the action on this open incident (default: the one open incident it concerns, if exactly one)."),
                click.option("--no-incident", is_flag=True, help="Record the action apart from any incident."),
            ]
        opts += [
            click.option("--dry-run", "plan_only", is_flag=True, help="Show what would change and stop (nothing applied, nothing recorded)."),
            click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
        ]
        for o in reversed(opts):
            f = o(f)
        return f

    return wrap(fn) if fn is not None else wrap


def confirm(what: str, yes: bool) -> None:
    """Ask "<what>. Proceed?" on a terminal unless ``yes`` (--yes or GGEN_YES=1); without a
    terminal and without --yes, refuse (exit 5): a script must say it means the change."""
    if yes:
        return
    if sys.stdin.isatty():
        if not click.confirm(f"{what}. Proceed?", default=False, err=True):
            fail("not confirmed; nothing changed", EXIT_REFUSED)
        return
    ctx = click.get_current_context()
    fail(f"{ctx.command_path.removeprefix('ggen ')} changes the live system: pass --yes to confirm (stdin is not a terminal)", EXIT_REFUSED)


def yes_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--yes/-y`` (also GGEN_YES=1), as on every command that changes the live system."""
    return click.option("--yes", "-y", is_flag=True, envvar="GGEN_YES", help="Do not ask for confirmation (also GGEN_YES=1). Required when stdin is not a terminal.")(fn)


def apply(operation: str, args: dict[str, Any], *, yes: bool, actor: str | None, incident_id: str | None, no_incident: bool, plan_only: bool, as_json: bool, reason: str = "", timeout: float = 30.0) -> dict[str, Any]:
    """Plan, confirm, apply and print one manual operation."""
    who = actor or login_name()
    req = {"operation": operation, "args": {k: v for k, v in args.items() if v is not None}, "actor": who, "reason": reason or "", "incident_id": incident_id, "attach": not no_incident}
    plan = call("act", dict(req, plan_only=True), timeout=timeout)
    if plan_only:
        if as_json:
            echo_json(plan)
        else:
            click.echo(f"would {safe_text(plan['summary'])}" + (f" ({safe_text(plan['no_change'])}: nothing to do)" if plan.get("no_change") else ""))
            _print_state("now", plan.get("before"))
            if plan.get("incident_id"):
                click.echo(f"  would be recorded on incident {plan['incident_id']}")
            click.echo("  (--dry-run: nothing applied, nothing recorded)")
        return plan
    if not plan.get("no_change"):
        on = f" on incident {plan['incident_id']}" if plan.get("incident_id") else ""
        mode = " [engine in DRY-RUN: it will be planned, not applied]" if plan.get("dry_run_mode") else ""
        confirm(f"{safe_text(plan['summary'])} as {safe_text(who)}{on}{mode}", yes)
    res = call("act", dict(req, plan_only=False), timeout=timeout)
    if as_json:
        echo_json(res)
        return res
    status = res.get("status")
    label = {"applied": "done", "planned": "dry-run (engine in dry-run mode): planned, not applied", "no_change": "nothing to do"}.get(status, status)
    click.echo(f"{label}: {safe_text(res.get('detail') or res.get('summary'))}")
    _print_changes(res.get("before"), res.get("after"))
    if res.get("incident_id"):
        click.echo(f"  recorded on incident {res['incident_id']}")
    elif res.get("incident_note"):
        click.echo(f"  {safe_text(res['incident_note'])}")
    if res.get("receipt_id"):
        click.echo(f"  receipt {res['receipt_id']} (engine.operator_action, actor {safe_text(who)})")
    return res


def _flatten(prefix: str, v: Any, out: dict[str, Any]) -> None:
    if isinstance(v, dict):
        for k, x in v.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), x, out)
    else:
        out[prefix] = v


def _print_state(label: str, state: Any) -> None:
    flat: dict[str, Any] = {}
    _flatten("", state or {}, flat)
    for k, v in flat.items():
        click.echo(f"  {safe_text(k)}: {safe_text(fmt(v))}")


def _print_changes(before: Any, after: Any) -> None:
    b: dict[str, Any] = {}
    a: dict[str, Any] = {}
    _flatten("", before or {}, b)
    _flatten("", after or {}, a)
    changed = [k for k in list(b) + [k for k in a if k not in b] if b.get(k) != a.get(k)]
    for k in changed:
        click.echo(f"  {safe_text(k)}: {safe_text(fmt(b.get(k)))} -> {safe_text(fmt(a.get(k)))}")


# ----------------------------------------------------------------------------- output
def fmt(v: Any, digits: int = 1) -> str:
    """A value for a table cell: integers plain, floats rounded, None as '-'."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "-"
        if abs(v) >= 100 or v == int(v):
            return f"{v:,.0f}".replace(",", "")
        return f"{v:.{digits}f}"
    if isinstance(v, (list, tuple)):
        return ",".join(fmt(x) for x in v) or "-"
    return str(v)


def table(headers: list[str], rows: list[list[Any]]) -> None:
    """Print rows as aligned columns (text is escaped, never interpreted)."""
    cells = [[safe_text(fmt(c)) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in cells:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    click.echo("  ".join(h.upper().ljust(widths[i]) for i, h in enumerate(headers)).rstrip())
    for r in cells:
        click.echo("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def when(ms: int | None) -> str:
    if ms is None:
        return "-"
    from engine.clock import iso_utc

    return iso_utc(int(ms))[:19] + "Z"


def ago(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "-"
    s = max(0, (now_ms - int(ms)) // 1000)
    if s < 120:
        return f"{s}s ago"
    if s < 7200:
        return f"{s // 60}m ago"
    return f"{s // 3600}h ago"
