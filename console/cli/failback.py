"""``ggen failback``: move traffic back to a recovered region (manual, after 5 passing checks)."""
from __future__ import annotations

import click

from console.cli.remote import Command, apply, change_options


@click.command(cls=Command)
@click.option("--region", required=True, metavar="R", help="The region to move traffic back to (the primary).")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def failback(region: str, reason: str, **opts) -> None:
    """Point DNS back at REGION. Refused until it has passed 5 consecutive health checks and the
    regions' data is consistent (see ggen replication verify --bidirectional)."""
    apply("failback", {"region": region}, reason=reason, **opts)
