"""``ggen replication``: cross-region replication of the live engine (status, verify, conflicts)."""
from __future__ import annotations

import sys

import click

from console.cli.common import EXIT_FAILED, echo_json, fail, safe_text
from console.cli.remote import Group, apply, call, change_options, json_option, table


@click.group(cls=Group)
def replication() -> None:
    """Replication between the primary and standby regions."""


@replication.command("status")
@json_option
def status(as_json: bool) -> None:
    """Lag, record counts, traffic and health per region (lag target < 100 ms)."""
    res = call("replication.status")
    if as_json:
        echo_json(res)
        return
    rows = [[r["name"], r["role"], "yes" if r["serving"] else "no", "up" if r["up"] else "DOWN", r["traffic_pct"], r["replication_lag_ms"], r["records"], r["stranded_records"], r["replaying_records"]] for r in res["regions"]]
    table(["region", "role", "serving", "health", "traffic_pct", "lag_ms", "records", "stranded", "replaying"], rows)
    click.echo(f"status {res['status']}: lag {res['replication_lag_ms']:.0f} ms (target < {res['lag_ok_ms']} ms), {res['conflicts']} conflicting records, {res['lost_records']} records discarded so far")


def _seconds(value: str) -> int:
    from engine.clock import parse_duration_ms

    v = value.strip()
    if v.isdigit():
        return int(v) * 1000
    return parse_duration_ms(v)


@replication.command("verify")
@click.option("--bidirectional", is_flag=True, help="Check both directions (each region has every record of the other).")
@click.option("--timeout", "timeout_text", default="300", show_default=True, metavar="SECONDS", help="How long to wait for replays to finish (seconds of engine time, or 5m).")
@json_option
def verify(bidirectional: bool, timeout_text: str, as_json: bool) -> None:
    """Compare per-region record counts; exit 1 unless CONSISTENT."""
    try:
        timeout_ms = _seconds(timeout_text)
    except ValueError:
        fail(f"--timeout: not a number of seconds or a duration: {timeout_text!r}", 2)
    if timeout_ms > 3_600_000:
        fail("--timeout: at most 3600 seconds", 2)
    res = call("replication.verify", {"bidirectional": bidirectional, "timeout_ms": timeout_ms}, timeout=timeout_ms / 1000 + 60)
    if as_json:
        echo_json(res)
    else:
        click.echo(f"{res['status']}: {safe_text(res['message'])}")
        for d in res["directions"]:
            click.echo(f"  {d['from']} -> {d['to']}: {d['missing_records']} records missing")
        click.echo("  counts: " + ", ".join(f"{k} {v}" for k, v in res["counts"].items()))
    if res["status"] != "CONSISTENT":
        sys.exit(EXIT_FAILED)


@replication.command("conflict-resolve")
@click.option("--strategy", required=True, type=click.Choice(["standby-wins", "timestamp-wins"]), help="standby-wins: the standby's data wins (others replayable from the write log); timestamp-wins: newest write wins.")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def conflict_resolve(strategy: str, reason: str, **opts) -> None:
    """Settle records one region has that the other never received after a failover."""
    apply("replication.conflict-resolve", {"strategy": strategy}, reason=reason, **opts)
