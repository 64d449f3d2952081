"""``ggen services``: health of every service of the live engine."""
from __future__ import annotations

from typing import Any

import click

from console.cli.common import echo_json
from console.cli.remote import Group, call, json_option, table

# table column -> the engine signal behind it (an unknown signal prints "?", never a number)
SIGNAL_OF = {
    "replicas": "replicas",
    "rps": "rps",
    "error_pct": "error_5xx_pct",
    "error_5xx_pct": "error_5xx_pct",
    "error_4xx_pct": "error_4xx_pct",
    "p99_ms": "p99_ms",
    "cpu_pct": "cpu_pct",
    "memory_pct": "memory_pct",
    "revision": "revision",
    "config_version": "config_version",
}


@click.group(cls=Group)
def services() -> None:
    """Services of the running engine."""


@services.command("health")
@json_option
def health(as_json: bool) -> None:
    """Up/degraded/down per service, with errors, latency, resources, revision and config.

    On an engine watching real sources, a value whose signal is stale (or not provided) is
    ``?`` (null in --json, named in ``unknown``), never the last or configured number."""
    from console.cli.circuits import unknown_signals

    res = call("services.health")
    unknown = unknown_signals(call("engine.status"))
    for s in res["services"]:
        s["unknown"] = [key for key, sig in SIGNAL_OF.items() if unknown("service", s["name"], sig) or s.get(key) is None]
        for key in s["unknown"]:
            s[key] = None
    if as_json:
        echo_json(res)
        return

    def cell(s: dict[str, Any], key: str) -> Any:
        return "?" if key in s["unknown"] else s[key]

    rows = [
        [s["name"], s["status"]] + [cell(s, k) for k in SIGNAL_OF] + ["; ".join(s["problems"]) or "-"]
        for s in res["services"]
    ]
    table(["service", "status", "replicas", "rps", "err_pct", "5xx_pct", "4xx_pct", "p99_ms", "cpu_pct", "mem_pct", "rev", "config", "problems"], rows)
    click.echo(f"serving region: {res['serving_region']}")
