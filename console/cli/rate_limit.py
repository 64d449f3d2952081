"""``ggen rate-limit``: limit a tenant's ingest, or requests at the edge."""
from __future__ import annotations

import click

from console.cli.remote import Group, apply, change_options


@click.group("rate-limit", cls=Group)
def rate_limit() -> None:
    """Rate limits: per tenant with --account-id, else at the fleet's edge (excess gets 429)."""


@rate_limit.command("enable")
@click.option("--account-id", metavar="ID", help="Limit this tenant's ingest (default: requests at the edge).")
@click.option("--max-per-second", required=True, type=click.FloatRange(min=0, min_open=True, max=10_000_000), metavar="N", help="Messages or requests per second.")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def enable(account_id: str | None, max_per_second: float, reason: str, **opts) -> None:
    """Turn a rate limit on (or change it)."""
    apply("rate-limit.enable", {"account_id": account_id, "max_per_second": max_per_second}, reason=reason, **opts)


@rate_limit.command("disable")
@click.option("--account-id", metavar="ID", help="Lift this tenant's limit (default: every request limit).")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def disable(account_id: str | None, reason: str, **opts) -> None:
    """Lift a rate limit."""
    apply("rate-limit.disable", {"account_id": account_id}, reason=reason, **opts)
