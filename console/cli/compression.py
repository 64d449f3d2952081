"""``ggen compression``: response compression on the live engine's HTTP services."""
from __future__ import annotations

import click

from console.cli.remote import Group, apply, change_options


@click.group(cls=Group)
def compression() -> None:
    """Response compression (smaller responses for some CPU)."""


@compression.command("enable")
@click.option("--algorithm", required=True, metavar="NAME", help="gzip, br, zstd or deflate (see runbooks/mitigation.toml).")
@click.option("--service", metavar="S", help="One service (default: the services that answer clients).")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def enable(algorithm: str, service: str | None, reason: str, **opts) -> None:
    """Compress responses."""
    apply("compression.enable", {"algorithm": algorithm, "service": service}, reason=reason, **opts)


@compression.command("disable")
@click.option("--service", metavar="S", help="One service (default: the services that answer clients).")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def disable(service: str | None, reason: str, **opts) -> None:
    """Stop compressing responses (the rollback of enable)."""
    apply("compression.disable", {"service": service}, reason=reason, **opts)
