"""``ggen mitigation trigger``: a person's mitigation on an incident, through the same actuator and
safety governor as the runbooks, recorded as the incident's ``mitigation.applied`` receipt."""
from __future__ import annotations

import click

from console.cli.common import echo_json, fail, safe_text
from console.cli.remote import Command, Group, apply, call, change_options, confirm, json_option, login_name, when, yes_option

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


@click.command("ack", cls=Command)
@click.option("--incident-id", required=True, metavar="ID", help="The incident (a unique prefix of its id is enough).")
@click.option("--actor", default=None, metavar="NAME", help="Who takes the incident (recorded in the receipt). Default: GGEN_ACTOR or the login name.")
@yes_option
@json_option
def ack(incident_id: str, actor: str | None, yes: bool, as_json: bool) -> None:
    """Acknowledge an incident on the running engine, as the console's `a` key does: the ladder's
    no-ack pages stop, and the incident's acknowledged receipt names you."""
    who = actor or login_name()
    inc = call("incident.get", {"incident_id": incident_id})
    if inc.get("acknowledged_by"):
        if as_json:
            echo_json(dict(inc, changed=False))
            return
        click.echo(f"{inc['id']} was already acknowledged by {safe_text(inc['acknowledged_by'])} at {when(inc.get('acknowledged_at_ms'))}; nothing changed")
        return
    confirm(f"acknowledge incident {inc['id']} ({inc['type']} {safe_text(inc['entity'])}, {inc['severity']}, {inc['state']}) as {safe_text(who)}", yes)
    res = call("incident.acknowledge", {"incident_id": inc["id"], "actor": who})
    if as_json:
        echo_json(dict(res, changed=True))
        return
    click.echo(f"acknowledged {res['id']} ({res['type']} {safe_text(res['entity'])}) as {safe_text(res['acknowledged_by'])} at {when(res.get('acknowledged_at_ms'))}; the no-ack pages stop")
