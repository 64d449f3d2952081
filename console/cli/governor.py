"""``ggen governor``: per-tenant consumer concurrency (status, update) and the safety governor."""
from __future__ import annotations

import click

from console.cli.common import echo_json
from console.cli.remote import Group, apply, call, change_options, json_option, table


@click.group(cls=Group)
def governor() -> None:
    """The tenant governor: consumer concurrency per account, and the safety governor's budget."""


@governor.command("status")
@click.option("--account-id", metavar="ID", help="One tenant (default: all).")
@json_option
def status(account_id: str | None, as_json: bool) -> None:
    """Concurrency, quota, backlog, lag and rates per tenant; kill switch, dry-run and budget."""
    res = call("governor.status", {"account_id": account_id})
    if as_json:
        echo_json(res)
        return
    rows = [
        [t["account_id"], t["consumer"], t["concurrency"], t["baseline_concurrency"], t["limit"], t["depth"], t["lag_p99_s"], t["ingest_per_s"], t["processing_per_s"], t["concurrency_used_pct"], t["rate_limit_per_s"]]
        for t in res["tenants"]
    ]
    table(["account", "consumer", "concurrency", "baseline", "limit", "depth", "lag_p99_s", "ingest_s", "processed_s", "used_pct", "rate_limit_s"], rows)
    s = res["safety"]
    spent = ", ".join(f"{k} {v}/{s['budget_actions']}" for k, v in s["spent_by_service"].items() if v) or "none"
    click.echo(f"safety governor: kill switch {'ON' if s['kill_switch'] else 'off'}, dry-run {'ON' if s['dry_run'] else 'off'}, budget {s['budget_actions']} actions per {s['budget_window_s'] // 60} min (spent: {spent})")


@governor.command("update")
@click.option("--account-id", required=True, metavar="ID", help="The tenant.")
@click.option("--concurrency", required=True, type=click.IntRange(min=1, max=100_000), metavar="N", help="New consumer concurrency (1 up to the tenant's limit).")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def update(account_id: str, concurrency: int, reason: str, **opts) -> None:
    """Set a tenant's consumer concurrency (raise it, or restore the previous value)."""
    apply("governor.update", {"account_id": account_id, "concurrency": concurrency}, reason=reason, **opts)
