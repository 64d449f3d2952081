"""``ggen circuit-breaker``: open, close, reset or override a circuit breaker of the live engine."""
from __future__ import annotations

import click

from console.cli.common import DURATION
from console.cli.remote import Group, apply, change_options


@click.group("circuit-breaker", cls=Group)
def circuit_breaker() -> None:
    """Open, close, reset or override the breaker(s) guarding calls to a service."""


@circuit_breaker.command("open")
@click.option("--service", required=True, metavar="S", help="The service whose callers' breakers open (or a circuit caller->dep).")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded), e.g. timeout_degradation.")
@change_options
def open_(service: str, reason: str, **opts) -> None:
    """Hold the breaker OPEN: callers fail fast (fallback, or retry with backoff)."""
    apply("circuit-breaker.open", {"service": service, "reason": reason or None}, reason=reason, **opts)


@circuit_breaker.command("close")
@click.option("--service", required=True, metavar="S", help="The service whose callers' breakers close.")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def close(service: str, reason: str, **opts) -> None:
    """Release the breaker to CLOSED (it re-opens by its rules if calls keep failing)."""
    apply("circuit-breaker.close", {"service": service, "reason": reason or None}, reason=reason, **opts)


@circuit_breaker.command("reset")
@click.option("--service", required=True, metavar="S", help="The service whose callers' breakers reset.")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def reset(service: str, reason: str, **opts) -> None:
    """Drop any override and counters; back to CLOSED (the rollback of an override)."""
    apply("circuit-breaker.reset", {"service": service, "reason": reason or None}, reason=reason, **opts)


@circuit_breaker.command("override")
@click.option("--service", required=True, metavar="S", help="The service whose callers' breakers are overridden.")
@click.option("--state", type=click.Choice(["CLOSED", "OPEN"], case_sensitive=False), default="CLOSED", show_default=True)
@click.option("--duration", type=DURATION, default="5m", show_default=True, help="How long the override holds (1s to 24h).")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def override(service: str, state: str, duration: int, reason: str, **opts) -> None:
    """Force a state for a while. CLOSED is refused unless the service is healthy."""
    apply("circuit-breaker.override", {"service": service, "state": state.upper(), "duration_ms": duration}, reason=reason, **opts)
