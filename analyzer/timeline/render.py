"""Text renderings of a timeline: a terminal table and Markdown, each line citing its origin."""
from __future__ import annotations

from analyzer.timeline.model import Origin, Timeline
from engine.clock import iso_utc

STATUS = {"ok": "ok", "warn": "WARN", "n/a": "n/a"}


def _t(ms: int | None) -> str:
    return "-" if ms is None else iso_utc(ms)[11:23]


def _hms(ms: int | None) -> str:
    return "-" if ms is None else iso_utc(ms)[11:19]


def _secs(ms: int | None) -> str:
    if ms is None:
        return "-"
    s = ms / 1000
    sign = "-" if s < 0 else ""
    s = abs(s)
    if s < 60:
        return f"{sign}{s:.0f} s"
    m, r = divmod(int(round(s)), 60)
    return f"{sign}{m} min {r:02d} s"


def _snap(snapshot: dict[str, float | None]) -> str:
    return "; ".join(f"{k} {'-' if v is None else f'{v:g}'}" for k, v in snapshot.items())


def _refs(origins: list[Origin], root: str | None) -> str:
    return "; ".join(o.ref(root) for o in origins) or "-"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def headline(tl: Timeline) -> list[str]:
    """The facts every rendering starts with."""
    f = tl.incident
    lines = []
    if f is not None and f.inferred_from is not None:
        region = f", region {f.region}" if f.region else ""
        lines.append(f"Incident inferred from the data alone (no receipts): {f.incident_type} {f.severity or ''} on {f.entity or f.service} (service {f.service}{region})")
        lines.append(f"Inferred from: {f.inferred_from}" + (f"; the alert line names incident {f.incident_id}" if f.incident_id else ""))
        lines.append(f"Summary: {f.summary}")
    elif f is not None:
        lines.append(f"Incident {f.incident_id}: {f.incident_type} {f.severity or ''} on {f.entity or f.service} (service {f.service}, region {f.region})")
        lines.append(f"Summary: {f.summary}")
    lines.append(f"Window: {iso_utc(tl.start_ms)} .. {iso_utc(tl.end_ms)}; data from {_t(tl.data_start_ms)} to {_t(tl.data_end_ms)} UTC")
    c = tl.counts
    lines.append(
        f"Sources: {c.get('log_records', 0)} log records, {c.get('traces', 0)} traces ({c.get('spans_read', 0)} spans read), "
        f"{c.get('metric_samples', 0)} metric samples" + (f" every {tl.metric_interval_ms // 1000} s" if tl.metric_interval_ms else "") + f", {c.get('receipts', 0)} receipts"
    )
    if tl.sources_root:
        lines.append(f"Files under: {tl.sources_root}")
    if tl.service_filter:
        lines.append(f"Service filter: {tl.service_filter}")
    return lines


def render_markdown(tl: Timeline) -> str:
    """The timeline as Markdown (used as-is in PIR drafts)."""
    root = tl.sources_root
    f = tl.incident
    out: list[str] = []
    if f is not None and f.inferred_from is not None:
        title = f"Timeline: {f.incident_type} (inferred from the data) {iso_utc(tl.start_ms)} .. {iso_utc(tl.end_ms)}"
    else:
        title = f"Timeline: {f.incident_type} {f.incident_id}" if f else f"Timeline: {iso_utc(tl.start_ms)} .. {iso_utc(tl.end_ms)}"
    out.append(f"# {title}")
    out.append("")
    out += [f"- {x}" for x in headline(tl)]
    out.append("")
    out.append("## Phases")
    out.append("")
    out.append("| Time (UTC) | Phase | What happened | Snapshot | Evidence |")
    out.append("|---|---|---|---|---|")
    for p in tl.phases:
        out.append(f"| {_t(p.at_ms)} | {p.name} | {_cell(p.what)} | {_cell(_snap(p.snapshot)) or '-'} | {_cell(_refs(p.evidence, root))} |")
        for e in p.during:  # within the phase above (it starts no phase of its own)
            out.append(f"| {_t(e.at_ms)} | | {_cell(e.text)} | - | {_cell(e.origin.ref(root))} |")
    out.append("")
    out.append("## First anomaly")
    out.append("")
    fa = tl.first_anomaly
    if fa is None:
        out.append("No series left its baseline before the alert.")
    else:
        out.append(f"{_t(fa.at_ms)} UTC: {fa.series} reached {fa.value:g} (baseline {fa.baseline:g}, threshold {fa.threshold:g}) [{fa.origin.ref(root)}]")
    if tl.onsets:
        out.append("")
        out.append("Order in which series left their baselines:")
        out.append("")
        for o in tl.onsets[:10]:
            out.append(f"- {_t(o.at_ms)} {o.service}: {o.series} {o.value:g} (baseline {o.baseline:g}) [{o.origin.ref(root)}]")
    out.append("")
    out.append("## Cause chain")
    out.append("")
    if not tl.causes:
        out.append("No candidate cause in the data.")
    for c in tl.causes[:5]:
        out.append(f"{c.rank}. **{c.service}** (score {c.score:.2f}, onset {_t(c.onset_ms)})")
        for r, o in zip(c.reasons, c.evidence):
            out.append(f"   - {_cell(r)} [{o.ref(root)}]")
    if tl.propagation:
        out.append("")
        out.append("Propagation seen in traces (effect <- cause):")
        out.append("")
        for chain, n in tl.propagation:
            out.append(f"- {chain} ({n} trace(s))")
    out.append("")
    out.append("## Validation")
    out.append("")
    for c in tl.checks:
        refs = f" [{_refs(c.evidence, root)}]" if c.evidence else ""
        out.append(f"- [{STATUS[c.status]}] {c.name}: {c.detail}{refs}")
    if tl.unexplained:
        out.append("")
        out.append("Unexplained:")
        out.append("")
        for e in tl.unexplained:
            out.append(f"- {_t(e.at_ms)} {e.text} [{e.origin.ref(root)}]")
    out.append("")
    out.append("## Durations")
    out.append("")
    out.append("| Duration | From the data | From the receipts | Difference | Data basis |")
    out.append("|---|---|---|---|---|")
    for d in tl.durations:
        out.append(f"| {d.name} | {_secs(d.data_ms)} | {_secs(d.receipt_ms)} | {_secs(d.diff_ms)} | {_cell(d.data_basis)} |")
    out.append("")
    out.append("## Evidence")
    out.append("")
    for e in tl.evidence:
        who = f" {e.service}" if e.service else ""
        out.append(f"- {_t(e.at_ms)} **{e.source}**{who}: {_cell(e.text)} [{e.origin.ref(root)}]")
    if tl.chart:
        out.append("")
        out.append("## Chart")
        out.append("")
        out.append(tl.chart_title)
        out.append("")
        out.append("```text")
        out += tl.chart
        out.append("```")
    if tl.receipts:
        out.append("")
        out.append("## Receipts")
        out.append("")
        out.append("| Seq | Receipt | Kind | Observed (UTC) | Verification |")
        out.append("|---|---|---|---|---|")
        for r in tl.receipts:
            out.append(f"| {r.seq} | {r.receipt_id} | {r.kind} | {_t(r.observed_ms)} | {_cell(r.verification)} |")
    if tl.notes:
        out.append("")
        out.append("## Notes")
        out.append("")
        out += [f"- {n}" for n in tl.notes]
    return "\n".join(out) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    words = text.split(" ")
    lines, cur = [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(cur)
    return lines or [""]


def render_table(tl: Timeline, width: int = 120) -> str:
    """The timeline as aligned plain text for a terminal."""
    root = tl.sources_root
    out = list(headline(tl))
    out.append("")
    out.append("PHASES")
    for p in tl.phases:
        head = f"  {_t(p.at_ms)}  {p.name:<15} "
        body = _wrap(p.what, width - len(head))
        out.append(head + body[0])
        out += [" " * len(head) + b for b in body[1:]]
        if p.snapshot:
            out += [" " * len(head) + b for b in _wrap("[" + _snap(p.snapshot) + "]", width - len(head))]
        if p.evidence:
            out += [" " * len(head) + b for b in _wrap("<- " + _refs(p.evidence, root), width - len(head))]
        for e in p.during:  # within this phase (it starts no phase of its own)
            out += [" " * len(head) + b for b in _wrap(f"{_t(e.at_ms)} {e.text} <- {e.origin.ref(root)}", width - len(head))]
    out.append("")
    fa = tl.first_anomaly
    out.append("FIRST ANOMALY")
    out.append(f"  {_t(fa.at_ms)}  {fa.series} = {fa.value:g} (baseline {fa.baseline:g}) <- {fa.origin.ref(root)}" if fa else "  none before the alert")
    out.append("")
    out.append("CAUSE CHAIN (ranked)")
    for c in tl.causes[:5]:
        out.append(f"  {c.rank}. {c.service:<16} score {c.score:.2f}  onset {_t(c.onset_ms)}")
        for r, o in zip(c.reasons, c.evidence):
            for i, b in enumerate(_wrap(f"{r} <- {o.ref(root)}", width - 8)):
                out.append(("     - " if i == 0 else "       ") + b)
    for chain, n in tl.propagation:
        out.append(f"  propagation: {chain} ({n} traces)")
    out.append("")
    out.append("VALIDATION")
    for c in tl.checks:
        head = f"  [{STATUS[c.status]:>4}] "
        body = _wrap(f"{c.name}: {c.detail}", width - len(head))
        out.append(head + body[0])
        out += [" " * len(head) + b for b in body[1:]]
    for e in tl.unexplained:
        out.append(f"         unexplained {_t(e.at_ms)} {e.text} <- {e.origin.ref(root)}")
    out.append("")
    out.append("DURATIONS           data        receipts    diff")
    for d in tl.durations:
        out.append(f"  {d.name:<17} {_secs(d.data_ms):<11} {_secs(d.receipt_ms):<11} {_secs(d.diff_ms)}")
    out.append("")
    out.append("EVIDENCE")
    for e in tl.evidence:
        out.append(f"  {_t(e.at_ms)} {e.source:<7} {(e.service or '-'):<14} {e.text}  <- {e.origin.ref(root)}")
    if tl.chart:
        out.append("")
        out.append("CHART " + tl.chart_title)
        out += ["  " + x for x in tl.chart]
    if tl.receipts:
        out.append("")
        out.append("RECEIPTS")
        for r in tl.receipts:
            out.append(f"  {r.seq:>5} {r.receipt_id} {r.kind:<20} {_t(r.observed_ms)} {r.verification}")
    for n in tl.notes:
        out.append(f"note: {n}")
    return "\n".join(out) + "\n"
