"""``ggen circuits``: circuit breaker states of the live engine."""
from __future__ import annotations

from typing import Any, Callable

import click

from console.cli.common import echo_json
from console.cli.remote import Group, ago, call, json_option, table

UNKNOWN = "?"


def unknown_signals(status: dict[str, Any]) -> Callable[[str, str, str], bool]:
    """From ``engine.status``: ``unknown(kind, name, signal)`` is True when the engine watches
    real sources and that signal is stale now or no source provides it (the simulator knows
    everything). What is unknown is printed as ``?``/UNKNOWN, never as a healthy value."""
    observed = [s for s in status.get("sources") or [] if "source" in s]
    if not observed:
        return lambda kind, name, signal: False
    stale = status.get("stale") or {}
    every_lists = all("provides" in s for s in observed)
    provided = {p for s in observed for p in s.get("provides", [])}

    def unknown(kind: str, name: str, signal: str) -> bool:
        if signal in stale.get(f"{kind}:{name}", ()):
            return True
        return every_lists and f"{kind}.{signal}" not in provided

    return unknown


@click.group(cls=Group)
def circuits() -> None:
    """Circuit breakers of the running engine."""


@circuits.command("status")
@json_option
def status(as_json: bool) -> None:
    """Every breaker: state, since when, override, what it sees of its dependency.

    On an engine watching real sources, a breaker whose state is stale (or not provided) is
    UNKNOWN, not CLOSED."""
    res = call("circuits.status")
    unknown = unknown_signals(call("engine.status"))
    for c in res["circuits"]:
        if unknown("circuit", c["name"], "state"):
            c["last_known_state"], c["state"] = c["state"], "UNKNOWN"
            c["since_ms"] = None
    res["open"] = sum(1 for c in res["circuits"] if c["state"] not in ("CLOSED", "UNKNOWN"))
    res["unknown"] = sum(1 for c in res["circuits"] if c["state"] == "UNKNOWN")
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
        state_unknown = c["state"] == "UNKNOWN"

        def dep(key: str) -> Any:
            v = c[key]
            return UNKNOWN if v is None or (state_unknown and isinstance(v, float) and v != v) else v

        since = ago(c["since_ms"], now) if c["since_ms"] else ("?" if state_unknown else "-")
        rows.append([c["name"], c["state"], since, override, dep("dependency_error_pct"), dep("dependency_p99_ms"), c["probe_successes"], c["opened_count"]])
    table(["circuit", "state", "since", "override", "dep_err_pct", "dep_p99_ms", "probes_ok", "opened"], rows)
    line = f"{res['open']} of {len(res['circuits'])} not CLOSED"
    if res["unknown"]:
        line += f", {res['unknown']} UNKNOWN (stale or not observed: not known to be closed)"
    click.echo(line)
