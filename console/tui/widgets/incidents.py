"""The incidents table and the selected incident's runbook progress and recovery criteria."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from console.tui.text import SEVERITY_STYLE, STATE_STYLE, STEP_MARK, TYPE_SHORT, clock, duration, fixed, literal, short_id
from console.tui.view import IncidentDetail, IncidentRow
from console.tui.widgets import TextView

ACK_STYLE = {"auto": "dim", "waiting": "bold yellow", "late": "bold white on red", "done": "green", "closed": "dim"}
COLUMNS = (("sev", "Sev"), ("incident", "Incident"), ("state", "State"), ("age", "Age"), ("ack", "Ack"))
# Widths the columns start at (and never go below): a rebuild of the table lays out the whole
# screen again, so the columns are wide enough for common values and only ever grow.
MIN_WIDTHS = (4, 8, 10, 6, 8)


def incident_cells(r: IncidentRow) -> tuple[Text, ...]:
    dim = "" if r.open else "dim"
    sev = Text(r.severity, SEVERITY_STYLE.get(r.severity, "") if r.open else "dim")
    what = Text(TYPE_SHORT.get(r.type, r.type) + " ", dim or "bold", no_wrap=True, overflow="ellipsis")
    what.append_text(literal(r.entity, dim))
    return (
        sev,
        what,
        Text(r.state, STATE_STYLE.get(r.state, "") if r.open else "dim green"),
        Text(duration(r.age_ms), dim),
        literal(r.ack_text, ACK_STYLE.get(r.ack_level, "")),
    )


class IncidentTable(DataTable):
    """Every incident of the session: open ones first (most severe first), resolved ones after."""

    DEFAULT_CSS = """
    IncidentTable { overflow-x: hidden; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self._ids: list[str] = []
        self._cells: dict[str, tuple[str, ...]] = {}
        self.expect: str | None = None  # the row the cursor is being put back on after a rebuild
        self._width_now: tuple[int, ...] = ()

    def on_mount(self) -> None:
        self._rebuild([], [], self._widths([]))

    @property
    def selected_id(self) -> str | None:
        if not self._ids or self.cursor_row < 0 or self.cursor_row >= len(self._ids):
            return None
        return self._ids[self.cursor_row]

    def _widths(self, cells: list[tuple[Text, ...]]) -> tuple[int, ...]:
        """Every column as wide as its widest cell (never narrower than before); the incident
        column gets what the others leave and cuts longer names with an ellipsis."""
        now = self._width_now or MIN_WIDTHS
        want = [max([now[i], MIN_WIDTHS[i]] + [row[i].cell_len for row in cells]) for i in range(len(COLUMNS))]
        room = self.scrollable_content_region.width - 2 * self.cell_padding * len(COLUMNS) - sum(w for i, w in enumerate(want) if i != 1)
        if room > 0:
            want[1] = max(MIN_WIDTHS[1], min(max([len(COLUMNS[1][1])] + [row[1].cell_len for row in cells]), room))
        return tuple(want)

    def on_resize(self) -> None:
        self._width_now = ()  # the next reading rebuilds the columns for the new width

    def _rebuild(self, rows: list[IncidentRow], cells: list[tuple[Text, ...]], widths: tuple[int, ...]) -> None:
        # Fixed widths, set here: the table's own auto-width can lag a frame behind new rows.
        self.clear(columns=True)
        for (key, label), w in zip(COLUMNS, widths):
            self.add_column(label, key=key, width=w)
        self._cells.clear()
        for r, c in zip(rows, cells):
            self.add_row(*c, key=r.id)
            self._cells[r.id] = tuple(x.plain for x in c)
        self._ids = [r.id for r in rows]
        self._width_now = widths

    def show(self, rows: list[IncidentRow], selected: str | None) -> None:
        cells = [incident_cells(r) for r in rows]
        widths = self._widths(cells)
        ids = [r.id for r in rows]
        if ids != self._ids or widths != self._width_now:
            self._rebuild(rows, cells, widths)
            if selected in ids:
                # Rebuilding puts the cursor on row 0 first; the highlight events of that pass
                # are ignored until the cursor is back on the selected row.
                self.expect = selected if ids.index(selected) != 0 else None
                self.move_cursor(row=ids.index(selected), animate=False)
            return
        for r, row_cells in zip(rows, cells):
            plain = tuple(c.plain for c in row_cells)
            old = self._cells.get(r.id)
            if old == plain:
                continue
            for (key, _), cell, before, now in zip(COLUMNS, row_cells, old or ("",) * len(COLUMNS), plain):
                if before != now:
                    self.update_cell(r.id, key, cell)
            self._cells[r.id] = plain


def _metric_pairs(keys: tuple[str, ...], before: dict[str, int], after: dict[str, int]) -> Text:
    t = Text()
    for k in keys:
        if k not in before and k not in after:
            continue
        t.append(f"  {k} ", "dim")
        t.append(str(before.get(k, "?")))
        t.append(" → ", "dim")
        t.append(str(after[k]) if k in after else "…", "" if k in after else "dim")
    return t


def detail_text(d: IncidentDetail, now_ms: int) -> Text:
    """The selected incident as text: header, times, runbook steps, recovery criteria."""
    r = d.row
    t = Text()
    t.append(f" {r.severity} ", SEVERITY_STYLE.get(r.severity, "reverse"))
    if r.max_severity != r.severity:
        t.append(f" (max {r.max_severity})", SEVERITY_STYLE.get(r.max_severity, ""))
    t.append(" ")
    t.append_text(literal(r.title, "bold"))
    t.append(f"  {short_id(r.id)}\n", "dim")
    t.append("state ", "dim")
    t.append(r.state, STATE_STYLE.get(r.state, ""))
    t.append(f" · age {duration(r.age_ms)}", "")
    t.append(" · ack ", "dim")
    if r.ack_level == "waiting":
        t.append(f"{r.ack_text} left", ACK_STYLE["waiting"])
        t.append(f" (SLA {duration(d.ack_within_s * 1000)} from {'the page' if r.ack_from == 'page' else 'escalation'})", "dim")
    elif r.ack_level == "late":
        t.append(f"{r.ack_text} past the {duration(d.ack_within_s * 1000)} SLA", ACK_STYLE["late"])
    elif r.ack_level == "auto":
        t.append("automation handling it", "dim")
    else:
        t.append_text(literal(r.ack_text, ACK_STYLE.get(r.ack_level, "")))
    t.append("\n")
    t.append("detected ", "dim")
    t.append(clock(r.detected_at_ms))
    t.append(f" · TTD {duration(d.time_to_detect_ms)}")
    if d.first_action_at_ms is not None:
        t.append(f" · first action +{duration(d.first_action_at_ms - r.detected_at_ms)}")
    if d.mttr_ms is not None:
        t.append(f" · MTTR {duration(d.mttr_ms)}", "green" if d.mttr_ms <= d.mttr_target_s * 1000 else "red")
        t.append(f" (target {duration(d.mttr_target_s * 1000)})\n", "dim")
    else:
        t.append(f" · MTTR target {duration(d.mttr_target_s * 1000)}\n", "dim")
    t.append("rule ", "dim")
    t.append_text(literal(d.rule))
    t.append(" · runbook ", "dim")
    t.append_text(literal(d.runbook))
    t.append("\n")
    if d.escalation_reason:
        t.append("escalated ", "bold magenta")
        t.append(clock(d.escalated_at_ms) + " ", "")
        t.append_text(literal(d.escalation_reason))
        t.append("\n")
    if d.affected:
        t.append("affected ", "dim")
        t.append_text(literal(", ".join(d.affected)))
        t.append("\n")
    t.append("\nRunbook steps\n", "bold underline")
    for s in d.steps:
        mark, style = STEP_MARK.get(s.status, ("?", ""))
        t.append(f" {mark} ", style)
        t.append_text(literal(s.step_id, "bold" if s.status in ("running", "done", "failed") else "dim"))
        t.append(f" {s.status}", style)
        if s.runs > 1:
            t.append(f" ×{s.runs}", "dim")
        t.append("  ")
        t.append_text(literal(s.title, "dim"))
        t.append("\n")
        if s.detail and s.status != "pending":
            t.append("     ")
            t.append_text(literal(s.detail, "italic"))
            t.append("\n")
        if s.before:
            t.append("    ")
            t.append_text(_metric_pairs(d.key_signals, s.before, s.after))
            t.append("\n")
    t.append("\nRecovery criteria", "bold underline")
    t.append(f" (all must hold {duration(d.hold_s * 1000)})  ", "dim")
    if r.state == "resolved":
        t.append(f"held {duration(d.held_ms)}: resolved", "green")
    elif d.held_ms is not None:
        t.append(f"holding {duration(d.held_ms)} / {duration(d.hold_s * 1000)}", "bold cyan")
    else:
        t.append("not met", "yellow")
    t.append("\n")
    for c in d.criteria:
        t.append(" ✓ " if c.holds else " ✗ ", "green" if c.holds else "red")
        t.append(f"{c.signal} {c.op} {c.value:g}", "")
        t.append(f"   now {fixed(c.current, '.4g')}\n", "dim")
    if r.escalated and r.open and d.manual.get("mitigate"):
        t.append("\nManual procedure (runbook)\n", "bold underline")
        for cmd in d.manual["diagnose"][:3] + d.manual["mitigate"]:
            t.append("  $ ", "dim")
            t.append_text(literal(cmd))
            t.append("\n")
    return t


NO_INCIDENT = Text("No incident selected. Incidents appear above when the engine detects one; press c to inject a fault.", "dim")


class IncidentPanel(TextView):
    """The selected incident (scrolls when taller than its panel)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(NO_INCIDENT, **kwargs)

    def show_detail(self, d: IncidentDetail | None, now_ms: int) -> None:
        if d is None:
            self.show(NO_INCIDENT)
            return
        t = detail_text(d, now_ms)
        t.rstrip()
        self.show(t)
