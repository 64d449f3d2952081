"""``ggen mitigation trigger``: a person's mitigation on an incident, through the same actuator and
safety governor as the runbooks, recorded as the incident's ``mitigation.applied`` receipt."""
from __future__ import annotations

import click

from console.cli.common import fail
from console.cli.remote import Group, apply, change_options

ACTIONS_HELP = (
    "scale-up, rollback, revert-config, disable-flag, restart, failover, failback, open-breaker, close-breaker, "
    "throttle, prioritize, create-index, compress (which ones fit depends on the incident type), or an engine "
    "action name such as scale_concurrency"
)


def _params(pairs: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            fail(f"--param: expected KEY=VALUE, got {p!r}", 2)
        v: object = value
        try:
            v = int(value)
        except ValueError:
            try:
                v = float(value)
            except ValueError:
                v = value
        out[key.strip()] = v
    return out


@click.group(cls=Group)
def mitigation() -> None:
    """Manual mitigation of an open incident."""


@mitigation.command("trigger")
@click.option("--incident-id", "trigger_incident", required=True, metavar="ID", help="The incident (a unique prefix of its id is enough).")
@click.option("--action", required=True, metavar="ACTION", help=ACTIONS_HELP)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Action parameters, e.g. to=60, max_per_second=100, target=app.")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options(incident=False)
def trigger(trigger_incident: str, action: str, params: tuple[str, ...], reason: str, **opts) -> None:
    """Run ACTION for the incident; the receipt names you as the actor."""
    apply("mitigation.trigger", {"incident_id": trigger_incident, "action": action, "params": _params(params)}, reason=reason, incident_id=None, no_incident=False, **opts)
