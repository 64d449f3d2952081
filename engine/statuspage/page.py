"""The status page itself: component states from incidents, cadence timers, drafts from receipts,
and the rendered page (static HTML with inline CSS, no scripts) with its JSON feed.

Every piece of text on the page goes through ``html.escape``: incident titles and updates are
typed by people and come from logs, so ``<script>`` shows as text and never runs.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from engine.clock import iso_utc
from engine.statuspage.model import STATE_RANK, Action, StatusPolicy, StatusUpdate

SEV_ORDER = {"Sev1": 1, "Sev2": 2, "Sev3": 3, "Sev4": 4}


def _utc(ms: int | None) -> str:
    if ms is None:
        return "-"
    s = iso_utc(ms)
    return s[:10] + " " + s[11:16] + " UTC"


def _dur(ms: int) -> str:
    if 0 < ms < 60_000:
        return f"{ms // 1000} s"
    m = max(0, ms) // 60_000
    return f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


@dataclass
class Cadence:
    """When an incident's next status update is due, and whether it is late."""

    incident_id: str
    due_ms: int | None
    late: bool
    late_by_ms: int
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "due": _utc(self.due_ms) if self.due_ms else None, "due_ms": self.due_ms, "late": self.late, "late_by_ms": self.late_by_ms, "rule": self.rule}


def cadence(inc: Any, updates: list[StatusUpdate], policy: StatusPolicy, every_s: int, now_ms: int) -> Cadence:
    """The update timer of one incident (summary from the ledger) against its published updates.

    First post within ``first_post_within_s`` of detection; then every ``every_s`` (the severity's
    ``status_update_every_s``) and never more than ``max_gap_s`` apart; a severity with no cadence
    owes only the first post and the resolution; nothing is owed once resolved and posted.
    """
    r = policy.rules
    stamps = sorted(u.published_at_ms for u in updates if u.published_at_ms is not None)
    resolved_posted = any(u.status == "resolved" for u in updates)
    if inc.status == "resolved" and resolved_posted:
        return Cadence(inc.incident_id, None, False, 0, "resolved and posted")
    if not stamps:
        due = (inc.detected_at_ms if inc.detected_at_ms is not None else now_ms) + r.first_post_within_s * 1000
        rule = f"first post within {_dur(r.first_post_within_s * 1000)} of detection"
    elif inc.status == "resolved":
        due = inc.resolved_at_ms or now_ms
        rule = "resolution post owed"
    elif every_s <= 0:
        return Cadence(inc.incident_id, None, False, 0, "no cadence at this severity (start and resolution only)")
    else:
        gap = min(every_s, r.max_gap_s)
        due = stamps[-1] + gap * 1000
        rule = f"every {_dur(gap * 1000)}" + (f" (never a gap over {_dur(r.max_gap_s * 1000)})" if every_s > r.max_gap_s else "")
    late_by = max(0, now_ms - due)
    return Cadence(inc.incident_id, due, late_by > 0, late_by, rule)


@dataclass
class PageState:
    """What the page shows, for one audience."""

    view: str
    generated_at_ms: int
    components: list[dict[str, Any]]
    incidents: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def overall(self) -> str:
        worst = max((c["state"] for c in self.components), key=lambda s: STATE_RANK[s], default="operational")
        return worst

    def feed(self) -> dict[str, Any]:
        return {"schema": "ggen.statuspage/1", "view": self.view, "generated_at": iso_utc(self.generated_at_ms), "overall": self.overall,
                "components": self.components, "incidents": self.incidents, "warnings": self.warnings}


def _affects(spec: Any, inc: Any) -> bool:
    return (inc.service in spec.services) or (inc.incident_type in spec.incident_types)


def page_state(incidents: list[Any], store_updates: list[StatusUpdate], policy: StatusPolicy, *, view: str, now_ms: int, cadence_s: dict[str, int]) -> PageState:
    """Components and incidents for ``view`` (public: customer-facing components, Sev1/Sev2 only,
    scrubbed text; internal: everything, with cadence warnings)."""
    public = view == "public"
    shown = [i for i in incidents if not public or (i.severity in policy.rules.public_severities)]
    by_inc: dict[str, list[StatusUpdate]] = {}
    for u in store_updates:
        by_inc.setdefault(u.incident_id, []).append(u)
    comps = []
    for spec in policy.components:
        if public and spec.audience != "public":
            continue
        state = "operational"
        for inc in shown:
            if inc.status == "resolved" or not _affects(spec, inc):
                continue
            mine = [u for u in by_inc.get(inc.incident_id, []) if u.audience == view or not public]
            latest = mine[-1].status if mine else None
            s = policy.states.get("recovering") if latest == "recovering" else policy.states.get(inc.current_severity or inc.severity or "Sev4", "degraded")
            if s and STATE_RANK[s] > STATE_RANK[state]:
                state = s
        comps.append({"name": spec.name, "audience": spec.audience, "state": state, "label": policy.labels.get(state, state)})
    out_incs = []
    warnings = []
    for inc in sorted(shown, key=lambda i: (i.status == "resolved", SEV_ORDER.get(i.severity or "", 9), -(i.detected_at_ms or 0))):
        all_ups = by_inc.get(inc.incident_id, [])
        ups = [u for u in all_ups if u.audience == "public"] if public else list(all_ups)
        if public and not ups and inc.status == "resolved":
            continue
        comp_names = [c.name for c in policy.components if _affects(c, inc) and (not public or c.audience == "public")]
        if not public:
            title = inc.summary or str(inc.incident_type)
        elif ups:
            title = ups[-1].title
        else:
            title = f"{', '.join(comp_names) or 'Service'}: we are investigating reports of a problem"
        cad = cadence(inc, [u for u in all_ups if u.audience == "public"] or list(all_ups), policy, cadence_s.get(inc.severity or "", 0), now_ms)
        if cad.late and not public:
            warnings.append(f"{inc.severity} {inc.incident_id}: status update late by {_dur(cad.late_by_ms)} ({cad.rule})")
        out_incs.append({
            "incident_id": inc.incident_id,
            "title": title if not public else policy.scrub(title),
            "severity": inc.severity,
            "status": (ups[-1].status if ups else ("resolved" if inc.status == "resolved" else "investigating")),
            "components": comp_names,
            "started": _utc(inc.detected_at_ms),
            "type": None if public else inc.incident_type,
            "service": None if public else inc.service,
            "cadence": None if public else cad.to_dict(),
            "updates": [_update_dict(u, policy, public) for u in reversed(ups)],
        })
    return PageState(view, now_ms, comps, out_incs, warnings)


def _update_dict(u: StatusUpdate, policy: StatusPolicy, public: bool) -> dict[str, Any]:
    d = u.model_dump(exclude={"drafted_from", "drafted_at_ms"})
    d["published_at"] = _utc(u.published_at_ms)
    d["message"] = policy.scrub(u.message()) if public else u.message()
    return d


# ----------------------------------------------------------------------------- drafting
def draft_update(receipts: list[dict[str, Any]], policy: StatusPolicy, *, audience: str, number: int, now_ms: int, every_s: int, mttr_target_s: int | None = None) -> StatusUpdate:
    """The next update of an incident, written from its receipts (payloads in ledger order), for a
    person to edit and approve. Public drafts name no internal tool or service."""
    public = audience == "public"
    first = receipts[0]
    iid = first["incident_id"]
    kinds = [r.get("kind") for r in receipts]
    sev = receipts[-1].get("severity") or first.get("severity") or "Sev4"
    started_ms = _ms(first.get("observed_at")) or now_ms
    resolved = "recovery.verified" in kinds
    status = "resolved" if resolved else "recovering" if "recovery.started" in kinds else ("identified" if "mitigation.applied" in kinds else "investigating")
    comps = [c.name for c in policy.components if (first.get("service") in c.services or first.get("incident_type") in c.incident_types) and (not public or c.audience == "public")] or ["Service"]
    end_ms = _ms(receipts[-1].get("observed_at")) if resolved else now_ms
    actions = []
    for r in receipts:
        k = r.get("kind")
        if k in ("mitigation.applied", "incident.escalated", "recovery.started", "recovery.verified", "incident.acknowledged"):
            text = _public_action(r) if public else str(r.get("summary") or k)
            actions.append(Action(at=_utc(_ms(r.get("observed_at")))[11:], text=text))
    ev = (receipts[-1].get("evidence") or {}) if resolved else {}
    root = str(ev.get("root_cause") or ev.get("root_cause_hint") or "") if resolved else ""
    target = policy.targets.get(first.get("incident_type") or "", "")
    metrics = [f"target: {target}"] if target else []
    if not public:
        det = first.get("evidence") or {}
        if "signal" in det and "value_milli" in det:
            metrics.insert(0, f"{det.get('signal')} {det['value_milli'] / 1000:g} vs threshold {det.get('threshold_milli', 0) / 1000:g}")
    title = (f"{', '.join(comps)}: " + {"investigating": "we are investigating a problem", "identified": "cause identified, mitigation under way",
                                         "recovering": "recovering", "resolved": "resolved"}[status]) if public else str(first.get("summary") or "incident")
    next_ms = None if resolved else now_ms + min(every_s or policy.rules.max_gap_s, policy.rules.max_gap_s) * 1000
    upd = StatusUpdate(
        incident_id=iid, number=number, audience=audience, status=status, severity=sev, banner=policy.banners[status], title=title,
        components=comps,
        impact=("Some requests fail or are delayed" if not resolved else "Service is operating normally") if public else f"{first.get('incident_type')} on {first.get('service')} in {first.get('region')}",
        started=_utc(started_ms), duration=_dur((end_ms or now_ms) - started_ms),
        affected=", ".join(comps), not_affected=", ".join(c.name for c in policy.components if c.name not in comps and (not public or c.audience == "public")),
        root_cause=(policy.scrub(root) if public and root else root) or "under investigation",
        actions=actions, metrics=metrics,
        expected_resolution="resolved" if resolved else (f"within {_dur(mttr_target_s * 1000)} of mitigation if it holds; we will confirm" if mttr_target_s else "to be confirmed in the next update"),
        next_update="" if next_ms is None else _utc(next_ms), drafted_at_ms=now_ms, drafted_from=[str(r.get("receipt_id")) for r in receipts],
    )
    if public:  # defence in depth: nothing internal in any field
        upd = StatusUpdate.model_validate(_scrub_all(upd.model_dump(), policy))
    return upd


def _public_action(r: dict[str, Any]) -> str:
    k = r.get("kind")
    return {"mitigation.applied": "Mitigation applied", "incident.escalated": "Engineers engaged", "recovery.started": "Recovery under way; monitoring",
            "recovery.verified": "Recovery confirmed", "incident.acknowledged": "An engineer is working on it"}.get(str(k), "Update")


def _scrub_all(v: Any, policy: StatusPolicy) -> Any:
    if isinstance(v, str):
        return policy.scrub(v)
    if isinstance(v, list):
        return [_scrub_all(x, policy) for x in v]
    if isinstance(v, dict):
        return {k: (x if k in ("incident_id", "drafted_from", "audience", "status", "severity") else _scrub_all(x, policy)) for k, x in v.items()}
    return v


def _ms(text: Any) -> int | None:
    from engine.clock import parse_iso_ms

    try:
        return parse_iso_ms(str(text)) if text else None
    except ValueError:
        return None


def check_publishable(u: StatusUpdate, policy: StatusPolicy) -> list[str]:
    """Content rules before a person's approval is recorded: required fields, next update, and
    (public) no internal names."""
    problems = []
    if u.status != "resolved" and not u.next_update:
        problems.append("next_update is required until the incident is resolved")
    if u.audience == "public":
        text = u.message()
        found = policy.internal_terms_in(text)
        if found:
            problems.append(f"public text names internal things: {', '.join(found)}")
        if u.severity not in policy.rules.public_severities:
            problems.append(f"{u.severity} incidents are not shown on the public page (only {', '.join(policy.rules.public_severities)}); use --audience internal")
    return problems


# ----------------------------------------------------------------------------- HTML
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:880px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}
.sub{color:#5b6473;margin:0 0 20px}
.banner{padding:16px 20px;border-radius:8px;color:#fff;font-weight:600;font-size:1.2em;margin-bottom:24px}
.operational{background:#1f9d55}.degraded{background:#d69e2e}.partial_outage{background:#dd6b20}.major_outage{background:#c53030}
.components{list-style:none;padding:0;margin:0 0 28px;background:#fff;border-radius:8px;border:1px solid #dde1e7}
.components li{display:flex;justify-content:space-between;padding:12px 18px;border-bottom:1px solid #eef0f3}
.components li:last-child{border-bottom:0}
.state{font-weight:600}.state.operational{color:#1f9d55;background:none}.state.degraded{color:#b7791f;background:none}
.state.partial_outage{color:#c05621;background:none}.state.major_outage{color:#c53030;background:none}
.tag{font-size:.75em;color:#5b6473;margin-left:8px;border:1px solid #cfd5dd;border-radius:4px;padding:1px 5px}
.incident{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:16px 20px;margin-bottom:16px}
.incident h3{margin:0 0 6px}.meta{color:#5b6473;font-size:.9em;margin-bottom:10px}
.update{border-left:3px solid #cfd5dd;padding:6px 12px;margin:10px 0}
.update pre{white-space:pre-wrap;font-family:inherit;margin:6px 0 0}
.warn{background:#fff5f5;border:1px solid #feb2b2;color:#9b2c2c;border-radius:8px;padding:10px 16px;margin-bottom:20px}
footer{color:#5b6473;font-size:.85em;margin-top:32px}
"""

OVERALL_TEXT = {"operational": "All systems operational", "degraded": "Degraded performance", "partial_outage": "Partial outage", "major_outage": "Major outage"}


def render_html(state: PageState, *, title: str = "Service status") -> str:
    """The page as one self-contained HTML document (inline CSS, no scripts, no external assets)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{e(title)}{' (internal)' if state.view == 'internal' else ''}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>{e(title)}</h1>",
        f'<p class="sub">{"Internal view: all severities and components" if state.view == "internal" else "Current status of our services"} &middot; updated {e(_utc(state.generated_at_ms))}</p>',
        f'<div class="banner {e(state.overall)}" id="overall" data-state="{e(state.overall)}">{e(OVERALL_TEXT.get(state.overall, state.overall))}</div>',
    ]
    if state.warnings:
        parts.append('<div class="warn" id="warnings"><strong>Update cadence</strong><ul>' + "".join(f"<li>{e(w)}</li>" for w in state.warnings) + "</ul></div>")
    parts.append('<h2>Components</h2><ul class="components" id="components">')
    for c in state.components:
        tag = '<span class="tag">internal</span>' if c["audience"] == "internal" else ""
        parts.append(f'<li data-component="{e(c["name"])}" data-state="{e(c["state"])}"><span class="name">{e(c["name"])}{tag}</span><span class="state {e(c["state"])}">{e(c["label"])}</span></li>')
    parts.append("</ul>")
    active = [i for i in state.incidents if i["status"] != "resolved"]
    past = [i for i in state.incidents if i["status"] == "resolved"]
    for heading, group, gid in (("Active incidents", active, "active"), ("Recently resolved", past, "resolved")):
        parts.append(f'<h2>{heading}</h2><section id="{gid}">')
        if not group:
            parts.append('<p class="sub">None.</p>')
        for inc in group:
            meta = f"{inc['severity']} &middot; {e(inc['status'].upper())} &middot; started {e(inc['started'])} &middot; {e(', '.join(inc['components']) or '-')}"
            if state.view == "internal":
                meta += f" &middot; {e(str(inc['type']))} on {e(str(inc['service']))} &middot; {e(inc['incident_id'])}"
                cad = inc.get("cadence") or {}
                if cad.get("due"):
                    meta += f" &middot; next update due {e(str(cad['due']))}" + (" (LATE)" if cad.get("late") else "")
            parts.append(f'<article class="incident" data-incident="{e(inc["incident_id"])}"><h3 class="title">{e(inc["title"])}</h3><div class="meta">{meta}</div>')
            for u in inc["updates"]:
                parts.append(f'<div class="update"><strong>{e(u["banner"])}</strong> (Update #{int(u["number"])}) &middot; {e(u["published_at"])}<pre>{e(u["message"])}</pre></div>')
            parts.append("</article>")
        parts.append("</section>")
    parts.append(f"<footer>Times are UTC. Feed: feed.json. Generated {e(iso_utc(state.generated_at_ms))}.</footer></main></body></html>")
    return "\n".join(parts) + "\n"
