"""``ggen services``: health of every service of the live engine."""
from __future__ import annotations

import click

from console.cli.common import echo_json
from console.cli.remote import Group, call, json_option, table


@click.group(cls=Group)
def services() -> None:
    """Services of the running engine."""


@services.command("health")
@json_option
def health(as_json: bool) -> None:
    """Up/degraded/down per service, with errors, latency, resources, revision and config."""
    res = call("services.health")
    if as_json:
        echo_json(res)
        return
    rows = [
        [s["name"], s["status"], s["replicas"], s["rps"], s["error_pct"], s["error_5xx_pct"], s["error_4xx_pct"], s["p99_ms"], s["cpu_pct"], s["memory_pct"], s["revision"], s["config_version"], "; ".join(s["problems"]) or "-"]
        for s in res["services"]
    ]
    table(["service", "status", "replicas", "rps", "err_pct", "5xx_pct", "4xx_pct", "p99_ms", "cpu_pct", "mem_pct", "rev", "config", "problems"], rows)
    click.echo(f"serving region: {res['serving_region']}")
