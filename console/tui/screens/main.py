"""The main screen: fleet, incidents, the selected incident, receipts, notices, and every action.

Four times a second a worker thread reads the engine under its lock (:func:`read_view`) and
posts :class:`ViewRefreshed`; once a second another worker reads and verifies new receipts.
Operator actions also run in workers, so the UI thread never waits on the engine's lock.
On terminals of at least 120x34 every panel is on screen; smaller ones show the incidents and
one other panel at a time (keys 1-5).
"""
from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from console.tui.actions import MANUAL_ACTIONS
from console.tui.messages import ActionCompleted, ReceiptsVerified, ViewRefreshed
from console.tui.text import TYPE_SHORT, clock, literal, short_id
from console.tui.view import ConsoleView, read_view
from console.tui.widgets.bars import PANEL_NAMES, MetricsBar, PanelTabs, StatusBar
from console.tui.widgets.feeds import NoticeLog, ReceiptLog
from console.tui.widgets.fleet import FleetTable
from console.tui.widgets.incidents import IncidentPanel, IncidentTable
from console.tui.widgets.infra import InfraPanel

# Dialogs and incident screens are imported when first opened: the first frame does not wait on them.

SPEEDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
WIDE_MIN = (120, 34)  # columns, rows from which every panel is shown at once
# Footer labels on terminals narrower than FOOTER_FULL_MIN columns, so every shown key fits at
# 80 columns (the help screen and the command palette keep the full descriptions).
FOOTER_SHORT = {"kill_switch": "Kill"}
FOOTER_FULL_MIN = 90
REFRESH_S = 0.25
RECEIPTS_S = 1.0


def notices_title(v: ConsoleView) -> Text:
    """The notices panel's title: failed deliveries first, then who is on call now and next."""
    oc = v.oncall
    if oc is None and not v.delivery_failures:
        return Text("Notifications · escalations · notices")
    t = Text("Notifications")
    if v.delivery_failures:
        t.append(" ")
        t.append(f" {v.delivery_failures} unsent ", "bold white on red")
    if oc is not None and "error" not in oc:
        t.append(" on call ", "dim")
        t.append_text(literal(f"{oc['primary']}/{oc['secondary']}", "bold"))
        t.append(f" until {clock(oc['until_ms'])[:5]}Z, next ", "dim")
        t.append_text(literal(f"{oc['next_primary']}/{oc['next_secondary']}"))
    elif oc is not None:
        t.append(" roster unreadable", "bold red")
    return t


class MainScreen(Screen[None]):
    """Everything at a glance, and the keys to act."""

    BINDINGS = [
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("a", "acknowledge", "Ack"),
        Binding("e", "escalate", "Escalate"),
        Binding("m", "mitigate", "Mitigate"),
        Binding("c", "chaos", "Chaos"),
        Binding("t", "timeline", "Timeline"),
        Binding("W", "warroom", "Warroom", show=False),
        Binding("P", "pir", "PIR draft", show=False),
        Binding("s", "similar", "Similar incidents", show=False),
        Binding("n", "note", "Note", show=False),
        Binding("p,space", "pause", "Pause"),
        Binding("plus_sign,plus,equals_sign", "faster", "Faster", key_display="+", show=False),
        Binding("hyphen_minus,minus", "slower", "Slower", key_display="-", show=False),
        Binding("d", "dry_run", "Dry-run", show=False),
        Binding("k", "kill_switch", "Kill switch"),
        Binding("o", "order", "Fleet order", show=False),
        Binding("1", "panel('fleet')", "Fleet panel", show=False),
        Binding("2", "panel('detail')", "Incident panel", show=False),
        Binding("3", "panel('infra')", "Regions/queues panel", show=False),
        Binding("4", "panel('receipts')", "Receipts panel", show=False),
        Binding("5", "panel('notices')", "Notices panel", show=False),
    ]

    selected_id: reactive[str | None] = reactive(None)
    panel: reactive[str] = reactive("fleet")

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.view: ConsoleView | None = None
        self._reading = False
        self._read_again = False
        self._verifying = False
        self._crash_shown = False
        self._feed: Any = None
        self._feed_problem: str | None = None
        self.frames = 0  # views shown (tests and the bench wait on it)
        self._notices_title: Text | str = ""
        self.on_first_frame: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        # Layout classes are set before the widgets mount: setting them afterwards restyles the
        # whole screen once per class (tens of milliseconds before the first frame).
        self._apply_layout(self.app.size.width, self.app.size.height)

        def switch(key: str) -> str:
            return "panel switch -shown" if key == self.panel else "panel switch"

        with Vertical(id="top"):
            yield StatusBar(id="status")
            yield MetricsBar(id="metrics")
        # Grid order on wide terminals: incidents | infra, detail | fleet, receipts | notices.
        yield IncidentTable(id="incidents", classes="panel")
        yield PanelTabs(id="tabs")
        yield InfraPanel(id="infra", classes=switch("infra"))
        yield IncidentPanel(id="detail", classes=switch("detail"))
        yield FleetTable(id="fleet", classes=switch("fleet"))
        yield ReceiptLog(id="receipts", classes=switch("receipts"))
        yield NoticeLog(id="notices", classes=switch("notices"))
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        titles = {"incidents": "Incidents", "fleet": "Fleet", "detail": "Incident", "infra": "Regions · breakers · queues", "receipts": "Receipts (✓ verified)", "notices": "Notifications · escalations · notices"}
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title
        if self.session.receipts and self.session.data_dir is not None:
            from console.tui.receipts import ReceiptFeed

            self._feed = ReceiptFeed(self.session.data_dir)
        else:
            self.query_one(ReceiptLog).write(Text("receipts are off in this session", "dim"))
        self.query_one(PanelTabs).show(self.panel)
        self.query_one(IncidentTable).focus()
        self.set_interval(REFRESH_S, self.request_refresh)
        self.set_interval(RECEIPTS_S, self.request_receipts)
        # The first reading is taken here, so the first frame shows the fleet; the engine has
        # only just started, so its lock is free. Every later reading runs in a worker.
        self._reading = True
        self.on_view_refreshed(ViewRefreshed(read_view(self.session, None)))
        self.request_receipts()

    def on_resize(self, event: Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)

    def _fit_footer(self, width: int) -> None:
        """Shorter footer labels on narrow terminals (this screen's bindings only)."""
        short = width < FOOTER_FULL_MIN
        if getattr(self, "_footer_short", False) == short:
            return
        self._footer_short = short
        import dataclasses

        full = {b.action: b.description for b in self.BINDINGS if isinstance(b, Binding)}
        keys = self._bindings.key_to_bindings
        for key, bindings in keys.items():
            keys[key] = [dataclasses.replace(b, description=FOOTER_SHORT.get(b.action, b.description) if short else full.get(b.action, b.description)) for b in bindings]
        if self.is_mounted:
            self.refresh_bindings()

    def _apply_layout(self, width: int, height: int) -> None:
        self._fit_footer(width)
        wide = width >= WIDE_MIN[0] and height >= WIDE_MIN[1]
        if self.has_class("-wide") == wide and self.has_class("-narrow") != wide:
            return
        self.set_class(wide, "-wide")
        self.set_class(not wide, "-narrow")

    def watch_panel(self, panel: str) -> None:
        if not self.is_mounted:
            return  # compose gives the first panel its class
        for key, _ in PANEL_NAMES:
            self.query_one(f"#{key}").set_class(key == panel, "-shown")
        self.query_one(PanelTabs).show(panel)

    def action_panel(self, panel: str) -> None:
        self.panel = panel

    # ------------------------------------------------------------------ reading the engine
    def request_refresh(self) -> None:
        """Start a read of the engine unless one is running (then read again right after it).

        While another screen is on top (a dialog, the timeline) nothing is read: redrawing the
        screen underneath a dialog costs more than the dialog itself. It catches up on resume."""
        if not self.is_current:
            return
        if self._reading:
            self._read_again = True
            return
        self._reading = True
        self.read_engine(self.selected_id)

    @work(thread=True, exit_on_error=False, group="view")
    def read_engine(self, selected: str | None) -> None:
        try:
            view = read_view(self.session, selected)
        except Exception as exc:  # shown in the notices feed, never raised into the UI
            self.session.console_notice("console.error", f"reading the engine failed: {type(exc).__name__}: {exc}")
            self._reading = False
            return
        self.post_message(ViewRefreshed(view))

    def on_view_refreshed(self, message: ViewRefreshed) -> None:
        self._reading = False
        v = message.view
        self.view = v
        if self.selected_id is None or all(r.id != self.selected_id for r in v.incidents):
            if v.incidents:
                self.selected_id = v.incidents[0].id
        self.query_one(StatusBar).show(v)
        self.query_one(MetricsBar).show(v)
        self.query_one(IncidentTable).show(v.incidents, self.selected_id)
        self.query_one(FleetTable).show(v.services, v.spark_floor)
        self.query_one(InfraPanel).show_view(v)
        self.query_one(IncidentPanel).show_detail(v.detail if v.detail and v.detail.row.id == self.selected_id else None, v.now_ms)
        if v.notices:
            self.query_one(NoticeLog).add(v.notices)
        title = notices_title(v)
        if title != self._notices_title:
            self._notices_title = title
            self.query_one(NoticeLog).border_title = title
        if v.crash and not self._crash_shown:
            from console.tui.screens.dialogs import CrashScreen

            self._crash_shown = True
            self.app.push_screen(CrashScreen(v.crash))
        self.frames += 1
        if self.frames == 1:
            for fn in self.on_first_frame:
                self.call_after_refresh(fn)
        if self._read_again or (v.detail is None and self.selected_id is not None):
            self._read_again = False
            self.request_refresh()

    def request_receipts(self) -> None:
        if self._feed is None or self._verifying:
            return
        self._verifying = True
        self.verify_receipts()

    @work(thread=True, exit_on_error=False, group="receipts")
    def verify_receipts(self) -> None:
        try:
            lines = self._feed.poll()
            problem = None
        except Exception as exc:  # a damaged ledger is reported in the feed
            lines, problem = [], f"ledger unreadable: {type(exc).__name__}: {exc}"
        self.post_message(ReceiptsVerified(lines, problem))

    def on_receipts_verified(self, message: ReceiptsVerified) -> None:
        self._verifying = False
        log = self.query_one(ReceiptLog)
        if message.problem and message.problem != self._feed_problem:
            log.write(literal(message.problem, "bold red"))
        self._feed_problem = message.problem
        log.add(message.lines)

    def on_screen_resume(self) -> None:
        if self.view is not None:
            self.request_refresh()

    def on_unmount(self) -> None:
        if self._feed is not None:
            self._feed.close()

    @on(DataTable.RowHighlighted, "#incidents")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = self.query_one(IncidentTable)
        key = event.row_key.value if event.row_key is not None else None
        if table.expect is not None:
            if key != table.expect:
                return  # the cursor passing row 0 while the table is rebuilt
            table.expect = None
        if key is not None and key != self.selected_id:
            self.selected_id = key

    @on(DataTable.RowSelected, "#incidents")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.panel = "detail"

    def watch_selected_id(self, old: str | None, new: str | None) -> None:
        if self.is_mounted and new != old:
            self.request_refresh()

    # ------------------------------------------------------------------ running actions
    def perform(self, label: str, fn: Callable[[], str]) -> None:
        """Run an operator action off the UI thread; its result comes back as ActionCompleted."""
        self._action_worker(label, fn)

    @work(thread=True, exit_on_error=False, group="actions")
    def _action_worker(self, label: str, fn: Callable[[], str]) -> None:
        try:
            detail = fn()
            ok = True
        except (KeyError, ValueError) as exc:
            ok, detail = False, str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        except Exception as exc:  # reported, never raised into the UI
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        self.post_message(ActionCompleted(label, ok, detail))

    def on_action_completed(self, message: ActionCompleted) -> None:
        kind = "console" if message.ok else "console.error"
        self.session.console_notice(kind, f"{message.label}: {message.detail}")
        self.notify(f"{message.label}: {message.detail}", severity="information" if message.ok else "error", markup=False, timeout=3)
        self.request_refresh()

    def _selected(self) -> str | None:
        if self.selected_id is None:
            self.notify("Select an incident first (arrow keys in the incidents table).", severity="warning")
        return self.selected_id

    def _incident_label(self, incident_id: str) -> str:
        v = self.view
        row = next((r for r in v.incidents if r.id == incident_id), None) if v else None
        if row is None:
            return short_id(incident_id)
        return f"{row.severity} {TYPE_SHORT.get(row.type, row.type)} {row.entity} ({short_id(incident_id)})"

    def confirm(self, title: str, body: str, then: Callable[[], None], label: str = "Yes") -> None:
        from console.tui.screens.dialogs import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(ConfirmScreen(title, body, label), answered)

    # ------------------------------------------------------------------ actions
    def action_acknowledge(self) -> None:
        iid = self._selected()
        if iid is None:
            return
        s = self.session

        def ack() -> str:
            inc = s.acknowledge(iid)
            return f"{short_id(inc.id)} acknowledged by {inc.acknowledged_by}"

        self.perform("acknowledge", ack)

    def action_escalate(self) -> None:
        iid = self._selected()
        if iid is None:
            return
        s = self.session

        def esc() -> str:
            s.escalate(iid, f"escalated from the console by {s.actor}")
            return f"{short_id(iid)} escalated: the on-call is paged"

        self.confirm("Escalate to a human?", f"Escalate {self._incident_label(iid)}: page the on-call and start the escalation ladder.", lambda: self.perform("escalate", esc), "Escalate")

    def action_mitigate(self) -> None:
        from console.tui.screens.mitigate import MitigateScreen, MitigationRequest

        s = self.session
        iid = self.selected_id
        try:
            defaults = s.action_targets([(a.name, a.target_kind) for a in MANUAL_ACTIONS], iid)
        except Exception as exc:  # an attached engine that stopped answering
            self.notify(f"cannot reach the engine: {exc}", severity="error", markup=False)
            return
        label = self._incident_label(iid) if iid else "no incident selected"

        def chosen(req: MitigationRequest | None) -> None:
            if req is None:
                return
            params = " ".join(f"{k}={v}" for k, v in req.params.items())
            body = f"Run {req.action} on {req.target}{' with ' + params if params else ''}" + (f" for incident {short_id(req.incident_id)}" if req.incident_id else "") + ". The safety governor decides; the action is recorded with you as the actor."
            self.confirm("Run this mitigation?", body, lambda: self.perform(f"manual {req.action}", lambda: self._do_mitigate(req)), "Run")

        self.app.push_screen(MitigateScreen(iid, label, defaults), chosen)

    def _do_mitigate(self, req: Any) -> str:
        result = self.session.manual_action(req.action, req.target, incident_id=req.incident_id, params=req.params, reason=req.reason)
        if not result.ok:
            raise ValueError(result.detail)
        return result.detail

    def action_chaos(self) -> None:
        from console.tui.screens.chaos import ChaosScreen

        s = self.session
        try:
            menu = s.fault_menu()
            pools = s.fault_targets()
        except Exception as exc:  # an attached engine that stopped answering
            self.notify(f"cannot reach the engine: {exc}", severity="error", markup=False)
            return

        def chosen(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                self.inject_fault(*choice)

        self.app.push_screen(ChaosScreen(menu, pools), chosen)

    def inject_fault(self, kind: str, target: str) -> None:
        """Confirm, then inject ``kind`` on ``target`` (chaos menu and command palette)."""
        s = self.session

        def inject() -> str:
            fault = s.inject(kind, target)
            return f"{fault.kind} injected on {fault.target}"

        self.confirm("Inject a fault?", f"Inject {kind} on {target}. The fleet degrades until the engine (or you) mitigate it.", lambda: self.perform("inject", inject), "Inject")

    def action_pause(self) -> None:
        s = self.session
        try:
            if s.paused:
                s.resume()
                self.notify("engine resumed")
            else:
                s.pause()
                self.notify("engine paused: the fleet and every timer stand still")
        except (ValueError, RuntimeError, OSError) as exc:  # refused, or an attached engine gone
            self.notify(f"pause: {exc}", severity="error", markup=False)
        self.request_refresh()

    def set_speed(self, speed: float) -> None:
        try:
            self.session.set_speed(speed)
        except (ValueError, RuntimeError, OSError) as exc:
            self.notify(f"speed: {exc}", severity="error", markup=False)
            return
        self.notify(f"speed ×{speed:g}")
        self.request_refresh()

    def action_faster(self) -> None:
        cur = self.session.speed
        self.set_speed(next((x for x in SPEEDS if x > cur), SPEEDS[-1]))

    def action_slower(self) -> None:
        cur = self.session.speed
        self.set_speed(next((x for x in reversed(SPEEDS) if x < cur), SPEEDS[0]))

    def action_dry_run(self) -> None:
        s = self.session
        on = not (self.view.dry_run if self.view is not None else False)

        def toggle() -> str:
            s.set_dry_run(on)
            return "dry-run on: actions are planned and recorded, not applied" if on else "dry-run off: actions are applied"

        if on:
            self.perform("dry-run", toggle)
        else:
            self.confirm("Leave dry-run?", "Automated and manual actions will change the fleet again.", lambda: self.perform("dry-run", toggle), "Apply actions")

    def action_kill_switch(self) -> None:
        s = self.session
        on = not (self.view.kill_switch if self.view is not None else False)

        def toggle() -> str:
            s.set_kill_switch(on)
            return "kill switch ON: automation stopped, open incidents escalated" if on else "kill switch off: automation resumed"

        if on:
            body = "Stop all automated mitigation. Every open incident is escalated to a human; people can still act."
            self.confirm("Pull the kill switch?", body, lambda: self.perform("kill switch", toggle), "Stop automation")
        else:
            self.confirm("Release the kill switch?", "Automated runbooks will act again.", lambda: self.perform("kill switch", toggle), "Resume automation")

    def action_note(self) -> None:
        iid = self._selected()
        if iid is None:
            return
        s = self.session

        from console.tui.screens.dialogs import PromptScreen

        def entered(text: str | None) -> None:
            if text:
                self.perform("note", lambda: (s.note(iid, text), f"note added to {short_id(iid)}")[1])

        self.app.push_screen(PromptScreen(f"Note for {self._incident_label(iid)}", "what happened, what you saw, what you decided"), entered)

    def action_timeline(self) -> None:
        iid = self._selected()
        if iid is not None:
            from console.tui.screens.incident import TimelineScreen

            self.app.push_screen(TimelineScreen(self.session, iid))

    def action_warroom(self) -> None:
        iid = self._selected()
        if iid is not None:
            from console.tui.screens.warroom import WarroomScreen

            self.app.push_screen(WarroomScreen(self.session, iid, self._incident_label(iid)))

    def action_pir(self) -> None:
        iid = self._selected()
        if iid is not None:
            from console.tui.screens.incident import PirScreen

            self.app.push_screen(PirScreen(self.session, iid))

    def action_similar(self) -> None:
        iid = self._selected()
        if iid is not None:
            from console.tui.screens.incident import SimilarScreen

            self.app.push_screen(SimilarScreen(self.session, iid))

    def action_order(self) -> None:
        by_health = self.query_one(FleetTable).toggle_order()
        self.notify("fleet: incidents and warnings first" if by_health else "fleet: in fleet order")
