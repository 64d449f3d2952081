"""``ggen config``: configuration history of the live engine's services (diff, rollback)."""
from __future__ import annotations

import click

from console.cli.common import TIME_REF, echo_json, safe_text
from console.cli.remote import Group, apply, call, change_options, fmt, json_option, table, when


@click.group(cls=Group)
def config() -> None:
    """Service configuration: what changed, and rolling it back."""


@config.command("diff")
@click.option("--from", "from_", type=TIME_REF, default="30m-ago", show_default=True, metavar="TIME", help="Start of the window (30m-ago, 24h, an ISO time).")
@click.option("--to", type=TIME_REF, default="now", show_default=True, metavar="TIME", help="End of the window.")
@click.option("--service", metavar="S", help="Only this service.")
@json_option
def diff(from_: str, to: str, service: str | None, as_json: bool) -> None:
    """Config changes in the window and the keys that differ between its two ends."""
    res = call("config.diff", {"from": from_, "to": to, "service": service})
    if as_json:
        echo_json(res)
        return
    click.echo(f"config changes {when(res['from_ms'])} .. {when(res['to_ms'])}")
    if not res["services"]:
        click.echo("  no config change in that window")
    for s in res["services"]:
        click.echo(f"{s['service']}: v{s['version_from']} -> v{s['version_to']}")
        for c in s["changes"]:
            click.echo(f"  {c['at'][:19]}Z  v{c['from_version']} -> v{c['to_version']}  {safe_text(c['detail'])}  (by {safe_text(c['actor'])})")
        if s["keys"]:
            table(["  key", "from", "to"], [["  " + k["key"], fmt(k["from"]), fmt(k["to"])] for k in s["keys"]])


@config.command("rollback")
@click.option("--timestamp", required=True, type=TIME_REF, metavar="TIME", help="Restore the config in force at this time (before the bad change).")
@click.option("--service", metavar="S", help="Only this service (default: every service changed since then).")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def rollback(timestamp: str, service: str | None, reason: str, **opts) -> None:
    """Revert config changes made at or after TIME (rolled out to every replica)."""
    apply("config.rollback", {"timestamp": timestamp, "service": service}, reason=reason, **opts)
