"""``ggen circuits``: circuit breaker states of the live engine."""
from __future__ import annotations

import click

from console.cli.common import echo_json
from console.cli.remote import Group, ago, call, json_option, table


@click.group(cls=Group)
def circuits() -> None:
    """Circuit breakers of the running engine."""


@circuits.command("status")
@json_option
def status(as_json: bool) -> None:
    """Every breaker: state, since when, override, what it sees of its dependency."""
    res = call("circuits.status")
    if as_json:
        echo_json(res)
        return
    now = res["now_ms"]
    rows = []
    for c in res["circuits"]:
        ov = c["override"]
        if ov is None:
            override = "-"
        elif ov["until_ms"]:
            override = f"{ov['state']} for {max(0, (ov['until_ms'] - now) // 1000)}s more"
        else:
            override = f"{ov['state']} (held until closed)"
        rows.append([c["name"], c["state"], ago(c["since_ms"], now) if c["since_ms"] else "-", override, c["dependency_error_pct"], c["dependency_p99_ms"], c["probe_successes"], c["opened_count"]])
    table(["circuit", "state", "since", "override", "dep_err_pct", "dep_p99_ms", "probes_ok", "opened"], rows)
    click.echo(f"{res['open']} of {len(res['circuits'])} not CLOSED")
