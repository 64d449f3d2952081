"""Screens about one incident: its timeline (reconstruction and event log), its PIR draft, similar past incidents."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static, TextArea

from console.tui.messages import PirDrafted, PirSaved, SimilarIncidentsFound, TimelineReconstructed
from console.tui.text import SEVERITY_STYLE, STATE_STYLE, clock, duration, literal, short_id


def _header(row: Any) -> Text:
    t = Text()
    t.append(f" {row.severity} ", SEVERITY_STYLE.get(row.severity, "reverse"))
    t.append(" ")
    t.append_text(literal(row.title, "bold"))
    t.append(f"  {short_id(row.id)}  ", "dim")
    t.append(row.state, STATE_STYLE.get(row.state, ""))
    t.append(f"  detected {clock(row.detected_at_ms)}, age {duration(row.age_ms)}", "dim")
    return t


class TimelineScreen(Screen[None]):
    """The incident's timeline: the analyzer's reconstruction (as ``ggen timeline`` prints it,
    or its Markdown), and the raw event log of the engine (time, offset from detection, kind,
    actor, the summary as recorded). Keys 1-3 switch, r rebuilds the reconstruction."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("1", "tab('recon')", "Reconstruction"),
        Binding("2", "tab('markdown')", "Markdown"),
        Binding("3", "tab('events')", "Event log"),
        Binding("r", "rebuild", "Rebuild"),
    ]

    def __init__(self, session: Any, incident_id: str) -> None:
        super().__init__()
        self.session = session
        self.incident_id = incident_id
        self.shown = 0
        self.result: Any = None
        self._width = 0

    def compose(self) -> ComposeResult:
        from textual.widgets import TabbedContent, TabPane

        from console.tui.widgets import TextView

        yield Static(id="timeline-head", classes="screen-title")
        with TabbedContent(id="timeline-tabs", initial="recon"):
            with TabPane("1 Reconstruction", id="recon"):
                yield Static(Text("Reconstructing the timeline from the receipts and the analyzer database…", "dim"), id="recon-basis", classes="basis")
                yield TextView(id="recon-text")
            with TabPane("2 Markdown", id="markdown"):
                yield TextView(id="markdown-text")
            with TabPane("3 Event log", id="events"):
                yield RichLog(id="timeline", wrap=True, min_width=20, markup=False, highlight=False, auto_scroll=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.refresh_events()
        self.set_interval(1.0, self.refresh_events)
        self.rebuild()
        self.query_one("#recon-text").focus()

    def action_tab(self, tab: str) -> None:
        from textual.widgets import TabbedContent

        self.query_one("#timeline-tabs", TabbedContent).active = tab
        focus = {"recon": "#recon-text", "markdown": "#markdown-text", "events": "#timeline"}[tab]
        self.query_one(focus).focus()

    def action_rebuild(self) -> None:
        self.query_one("#recon-basis", Static).update(Text("Reconstructing…", "dim"))
        self.rebuild()

    @work(thread=True, exclusive=True, exit_on_error=False, group="timeline-recon")
    def rebuild(self) -> None:
        from console.tui.timeline import Reconstruction, reconstruct_for

        try:
            result = reconstruct_for(self.session.data_dir, self.incident_id)
        except Exception as exc:  # shown on the tab, never raised into the UI
            result = Reconstruction(None, "", f"the timeline could not be built: {type(exc).__name__}: {exc}")
        self.post_message(TimelineReconstructed(self.incident_id, result))

    def on_timeline_reconstructed(self, event: TimelineReconstructed) -> None:
        self.result = event.result
        self._render_result()

    def on_resize(self) -> None:
        if self.result is not None:
            self._render_result()

    def _render_result(self) -> None:
        from console.tui.timeline import styled_table
        from console.tui.widgets import TextView

        r = self.result
        basis = self.query_one("#recon-basis", Static)
        recon = self.query_one("#recon-text", TextView)
        md = self.query_one("#markdown-text", TextView)
        if r.timeline is None:
            basis.update(literal(r.error or "no timeline", "bold yellow"))
            recon.show(Text("Press 3 for the engine's event log of this incident.", "dim"))
            md.show(Text())
            return
        head = Text("from ", "dim")
        head.append_text(literal(r.basis, "bold" if r.basis.startswith("analyzer") else "yellow"))
        head.append(" · r: rebuild", "dim")
        basis.update(head)
        width = max(60, (self.size.width or 100) - 4)
        recon.show(styled_table(r.table(width)))
        md.show(literal(r.markdown()))

    @work(thread=True, exclusive=True, exit_on_error=False, group="timeline")
    def refresh_events(self) -> None:
        try:
            got = self.session.incident_events(self.incident_id)
        except Exception:  # an attached engine that went away: the log stays as it was
            return
        if got is not None:
            self.app.call_from_thread(self._show, *got)

    def _show(self, row: Any, events: list[Any]) -> None:
        if not self.is_attached:
            return  # the screen was closed while the worker read
        self.query_one("#timeline-head", Static).update(_header(row))
        log = self.query_one("#timeline", RichLog)
        for e in events[self.shown :]:
            t = Text()
            t.append(clock(e.at_ms), "dim")
            offset = e.at_ms - row.detected_at_ms
            t.append(f" {'+' if offset >= 0 else '-'}{duration(abs(offset)):<7} ", "dim")
            t.append_text(literal(e.kind, "bold" if e.kind in ("incident.detected", "recovery.verified", "incident.escalated") else ""))
            t.append("  ")
            t.append_text(literal(e.actor, "cyan" if e.actor.startswith("person:") else "dim"))
            t.append("\n    ")
            t.append_text(literal(e.summary))
            log.write(t)
        self.shown = len(events)


class PirScreen(Screen[None]):
    """A PIR draft for the incident (from the analyzer's drafter when wired; the facts otherwise)."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("w", "save", "Write draft to data dir")]

    def __init__(self, session: Any, incident_id: str) -> None:
        super().__init__()
        self.session = session
        self.incident_id = incident_id
        self.text: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Drafting…", "dim"), id="pir-head", classes="screen-title")
        yield TextArea("", id="pir-text", read_only=True, soft_wrap=True, show_line_numbers=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.draft()

    @work(thread=True, exclusive=True, exit_on_error=False, group="pir")
    def draft(self) -> None:
        from console.tui.pir import draft_for

        try:
            text, source = draft_for(self.session, self.incident_id)
        except Exception as exc:  # shown, never raised into the UI
            text, source = f"could not draft: {type(exc).__name__}: {exc}", "error"
        self.post_message(PirDrafted(self.incident_id, text, source))

    def on_pir_drafted(self, event: PirDrafted) -> None:
        self.text = event.text
        head = Text("PIR draft", "bold")
        head.append(f" · {short_id(event.incident_id)} · from ", "dim")
        head.append_text(literal(event.source, "dim"))
        head.append(" · w: write it to the data directory", "dim")
        self.query_one("#pir-head", Static).update(head)
        self.query_one("#pir-text", TextArea).load_text(event.text)

    def action_save(self) -> None:
        if self.text is not None:
            self.save(self.text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="pir-save")
    def save(self, text: str) -> None:
        dd = self.session.data_dir
        if dd is None:
            self.post_message(PirSaved(None, "this session has no data directory"))
            return
        try:
            path: Path = dd.pir_dir / f"{short_id(self.incident_id)}-draft.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.post_message(PirSaved(None, f"{exc.strerror or exc}"))
            return
        self.post_message(PirSaved(str(path), None))

    def on_pir_saved(self, event: PirSaved) -> None:
        if event.error:
            self.notify(f"PIR draft not written: {event.error}", severity="error", markup=False)
        else:
            self.notify(f"PIR draft written to {event.path}", markup=False)


class SimilarScreen(Screen[None]):
    """Past incidents from the knowledge base that look like this one."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, session: Any, incident_id: str) -> None:
        super().__init__()
        self.session = session
        self.incident_id = incident_id

    def compose(self) -> ComposeResult:
        yield Static(Text("Searching the knowledge base…", "dim"), id="similar-head", classes="screen-title")
        with VerticalScroll(id="similar-scroll"):
            yield Static(id="similar-body")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.search()

    @work(thread=True, exclusive=True, exit_on_error=False, group="similar")
    def search(self) -> None:
        try:
            from analyzer.knowledge import similar_incidents
        except ImportError as exc:
            self.post_message(SimilarIncidentsFound(self.incident_id, [], f"knowledge base not available: {exc}"))
            return
        try:
            itype, signals, exclude = self.session.similar_query(self.incident_id)
            hits = similar_incidents(itype, signals, limit=5, data_dir=self.session.data_dir, exclude=exclude)
        except Exception as exc:  # a broken index or entry is shown, never raised into the UI
            self.post_message(SimilarIncidentsFound(self.incident_id, [], f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(SimilarIncidentsFound(self.incident_id, list(hits), None))

    def on_similar_incidents_found(self, event: SimilarIncidentsFound) -> None:
        head = Text("Similar incidents", "bold")
        head.append(f" · {short_id(event.incident_id)}", "dim")
        self.query_one("#similar-head", Static).update(head)
        body = Text()
        if event.error:
            body.append_text(literal(event.error, "bold red"))
        elif not event.hits:
            body.append("No similar incident in the knowledge base.", "dim")
        for h in event.hits:
            body.append(f"{h.score:5.2f} ", "dim")
            body.append(f" {h.severity} ", SEVERITY_STYLE.get(h.severity, "reverse"))
            body.append(" ")
            body.append_text(literal(h.title, "bold"))
            body.append("  ")
            body.append_text(literal(f"{h.date} · {', '.join(h.incident_types)} · {', '.join(h.services)} · MTTR {h.mttr_text}", "dim"))
            body.append("\n  root cause  ", "dim")
            body.append_text(literal(h.root_cause))
            body.append("\n  solution    ", "dim")
            body.append_text(literal(h.solution))
            if h.prevention:
                body.append("\n  prevention  ", "dim")
                body.append_text(literal("; ".join(h.prevention[:3])))
            body.append("\n  ")
            body.append_text(literal(h.path, "dim italic"))
            body.append("\n\n")
        self.query_one("#similar-body", Static).update(body)
