"""``ggen feature-flags``: feature flags of the live engine's services (list, disable)."""
from __future__ import annotations

import click

from console.cli.common import TIME_REF, echo_json
from console.cli.remote import Group, ago, apply, call, change_options, json_option, table


@click.group("feature-flags", cls=Group)
def feature_flags() -> None:
    """Feature flags per service, with who changed them when."""


@feature_flags.command("list")
@click.option("--changed-since", type=TIME_REF, metavar="TIME", help="Only flags changed since then (30m, 30m-ago, an ISO time).")
@click.option("--service", metavar="S", help="Only this service.")
@json_option
def list_(changed_since: str | None, service: str | None, as_json: bool) -> None:
    """Every flag: on/off, last change, by whom."""
    res = call("flags.list", {"changed_since": changed_since, "service": service})
    if as_json:
        echo_json(res)
        return
    now = res["now_ms"]
    rows = [[f["service"], f["flag"], "on" if f["enabled"] else "off", ago(f["changed_at_ms"], now), f["changed_by"]] for f in res["flags"]]
    if rows:
        table(["service", "flag", "state", "changed", "by"], rows)
    else:
        click.echo("no feature flag changed in that window" if changed_since else "no feature flags")


@feature_flags.command("disable")
@click.option("--service", required=True, metavar="S")
@click.option("--flag", required=True, metavar="NAME")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def disable(service: str, flag: str, reason: str, **opts) -> None:
    """Turn a flag off (atomic, no restart)."""
    apply("feature-flags.disable", {"service": service, "flag": flag}, reason=reason, **opts)
