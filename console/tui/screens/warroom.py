"""The warroom of an incident (09-warroom-templates): roles, closure checklist, reminders, the
scribe log with its input line, and who is on call.

Every change goes through the session to the engine (:mod:`engine.warroom.live`): a log line, a
role assigned or handed over, a checklist item, the closing becomes an event of the incident,
hence a signed receipt and a line of its timeline. The screen reads the room again every second,
so people working in the same room from other consoles (or ``ggen incidents warroom``) show up.
"""
from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, RichLog, Select, Static
from textual.widgets.option_list import Option

from console.tui.messages import WarroomChanged, WarroomRead
from console.tui.text import SEVERITY_STYLE, clock, literal, stamp

LOG_KINDS = ("note", "action", "diagnostic", "decision", "result", "poll", "status")
KIND_STYLE = {"decision": "bold magenta", "action": "cyan", "result": "green", "poll": "yellow", "status": "blue", "diagnostic": "", "note": "dim"}
REFRESH_S = 1.0


def header_text(room: dict[str, Any]) -> Text:
    """The header fields of the template: Incident ID, Severity, Start Time, IC, Scribe."""
    t = Text()
    t.append("Incident ID ", "dim")
    t.append_text(literal(room["incident_id"], "bold"))
    t.append("   Severity ", "dim")
    t.append(f" {room['severity']} ", SEVERITY_STYLE.get(room["severity"], "reverse"))
    t.append("   Start Time ", "dim")
    t.append(stamp(room["start_ms"]).replace("Z", " UTC"))
    t.append("\nIncident Commander ", "dim")
    t.append_text(literal(room["incident_commander"] or "(unassigned)", "bold" if room["incident_commander"] else "bold red"))
    t.append("   Scribe ", "dim")
    t.append_text(literal(room["scribe"] or "(unassigned)", "bold" if room["scribe"] else "bold red"))
    t.append("   ")
    if room["open"]:
        t.append(" OPEN ", "bold white on dark_green")
    else:
        t.append(f" CLOSED {clock(room['closed_at_ms'])} ", "bold white on grey37")
        t.append_text(literal(f" by {room['closed_by']}", "dim"))
    t.append("   ")
    t.append_text(literal(room["title"], "dim"))
    return t


def roles_text(room: dict[str, Any]) -> Text:
    t = Text()
    for r in room["roles"]:
        if not r["holders"] and not r["required"]:
            continue
        t.append(f"{r['title']}: ", "bold" if r["required"] else "")
        if r["holders"]:
            t.append_text(literal(", ".join(r["holders"])))
        else:
            t.append("(unassigned)", "bold red")
        t.append("\n")
    t.append(f"{room['people']} of {room['max_people']} people in the room", "dim")
    return t


def checklist_options(room: dict[str, Any]) -> list[Option]:
    out = []
    for c in room["checklist"]:
        done = c["done"]
        t = Text()
        t.append("☑ " if done else "☐ ", "bold green" if done else "bold")
        t.append_text(literal(c["id"], "bold" if not done else "green"))
        if done:  # ticked: who, and what backs it (the item's text is known by then)
            t.append_text(literal(f" ({done.get('by')}{': ' + done['detail'] if done.get('detail') else ''})", "dim"))
        else:
            t.append(" ")
            t.append_text(literal(c["text"]))
        out.append(Option(t, id=c["id"]))
    return out


def reminders_text(room: dict[str, Any]) -> Text:
    if not room["open"]:
        return Text("the room is closed", "dim")
    if not room["reminders"]:
        return Text("✓ nothing owed right now", "green")
    t = Text()
    for r in room["reminders"]:
        t.append("! ", "bold yellow")
        t.append_text(literal(r, "yellow"))
        t.append("\n")
    t.rstrip()
    return t


def oncall_text(state: dict[str, Any]) -> Text:
    """Who is on call now and next, and the deliveries that failed."""
    t = Text()
    oc = state.get("oncall")
    if oc is None:
        t.append("no roster configured (pages go to the ladder's handles)", "dim")
    elif "error" in oc:
        t.append_text(literal(f"roster: {oc['error']}", "bold red"))
    else:
        t.append("now ", "dim")
        t.append_text(literal(f"{oc['primary']} (primary), {oc['secondary']} (secondary)", "bold"))
        t.append_text(literal(f" · {oc['shift']} until {clock(oc['until_ms'])[:5]}Z", "dim"))
        t.append("\nnext ", "dim")
        t.append_text(literal(f"{oc['next_primary']}, {oc['next_secondary']} ({oc['next_shift']})"))
    n = state.get("delivery_failures", 0)
    t.append("\n")
    if n:
        t.append(f" {n} delivery failure{'s' if n != 1 else ''} ", "bold white on red")
        for f in state.get("failures", [])[-3:]:
            t.append("\n")
            t.append_text(literal(f, "red"))
    else:
        t.append("every notification delivered", "dim")
    return t


def log_line(e: dict[str, Any]) -> Text:
    t = Text()
    t.append(clock(e["at_ms"])[:5], "dim")
    t.append(" ")
    if e["kind"] != "note":
        t.append(f"[{e['kind']}] ", KIND_STYLE.get(e["kind"], ""))
    t.append_text(literal(e["text"]))
    t.append_text(literal(f" ({e['author']})", "dim"))
    if e.get("receipt_id"):
        t.append(" ✓", "green")
    return t


class RoomOpenScreen(ModalScreen["tuple[str, str] | None"]):
    """Open the warroom: who is Incident Commander and Scribe (either may be left for later)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, label: str, ic: str) -> None:
        super().__init__()
        self.label = label
        self.ic = ic

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(literal(f"Open the warroom of {self.label}", "bold"), id="dialog-title")
            yield Static(Text("The room, its roles and every line of its scribe log are recorded by the engine as the incident's events (signed receipts).", "dim"))
            with Horizontal(classes="field"):
                yield Label("IC", classes="field-label")
                yield Input(value=self.ic, placeholder="Incident Commander", id="room-ic")
            with Horizontal(classes="field"):
                yield Label("Scribe", classes="field-label")
                yield Input(placeholder="Scribe (can be assigned later)", id="room-scribe")
            with Horizontal(id="dialog-buttons"):
                yield Button("Open warroom", variant="primary", id="open", compact=True)
                yield Button("Cancel (Esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#room-ic", Input).focus()

    def _done(self) -> None:
        self.dismiss((self.query_one("#room-ic", Input).value.strip(), self.query_one("#room-scribe", Input).value.strip()))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "room-ic":
            self.query_one("#room-scribe", Input).focus()
        else:
            self._done()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "open":
            self._done()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RoleScreen(ModalScreen["tuple[str, str] | None"]):
    """Assign a role (or hand one over): pick the role, type the person, Enter."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, roles: list[dict[str, Any]], handover: bool) -> None:
        super().__init__()
        self.title_text = title
        self.roles = [r for r in roles if r["holders"]] if handover else roles
        self.handover = handover

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(literal(self.title_text, "bold"), id="dialog-title")
            options = []
            for r in self.roles:
                t = literal(r["title"], "bold")
                t.append_text(literal(f"  {', '.join(r['holders']) or '-'} ({len(r['holders'])} of {r['max']})", "dim"))
                options.append(Option(t, id=r["id"]))
            yield OptionList(*options, id="roles")
            with Horizontal(classes="field"):
                yield Label("To" if self.handover else "Person", classes="field-label")
                yield Input(placeholder="name", id="role-person")
            yield Static(Text("↑↓ role · Tab to the name · Enter to save · Esc to cancel", "dim"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#role-person", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        roles = self.query_one("#roles", OptionList)
        if roles.highlighted is None or not event.value.strip():
            self.notify("choose a role and type a name", severity="warning")
            return
        self.dismiss((self.roles[roles.highlighted]["id"], event.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)


class WarroomScreen(Screen[None]):
    """One incident's warroom."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("l", "focus_log", "Log a line"),
        Binding("a", "assign", "Assign role"),
        Binding("h", "handover", "Hand over"),
        Binding("c", "focus_checklist", "Checklist"),
        Binding("x", "close_room", "Close room"),
    ]

    def __init__(self, session: Any, incident_id: str, label: str) -> None:
        super().__init__()
        self.session = session
        self.incident_id = incident_id
        self.label = label
        self.room: dict[str, Any] | None = None
        self.state: dict[str, Any] = {}
        self._logged = 0
        self._reading = False
        self._asked_open = False
        self.reads = 0  # tests wait on it

    def compose(self) -> ComposeResult:
        yield Static(Text("Reading the warroom…", "dim"), id="room-head", classes="screen-title")
        with Horizontal(id="room-body"):
            with VerticalScroll(id="room-side"):
                yield Static(id="room-roles", classes="room-box")
                yield OptionList(id="room-checklist", classes="room-box")
                yield Static(id="room-reminders", classes="room-box")
                yield Static(id="room-oncall", classes="room-box")
            with Vertical(id="room-main"):
                yield RichLog(id="room-log", wrap=True, markup=False, highlight=False, min_width=20, classes="room-box")
                with Horizontal(id="room-entry"):
                    yield Select([(k, k) for k in LOG_KINDS], value="note", allow_blank=False, id="room-kind", compact=True)
                    yield Input(placeholder="scribe log: what was done, said, decided · Enter saves · Esc leaves the line", id="room-input")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        titles = {"room-roles": "Roles", "room-checklist": "Closure checklist", "room-reminders": "Reminders", "room-oncall": "On call · deliveries", "room-log": "Scribe log"}
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title
        self.request_read()
        self.set_interval(REFRESH_S, self.request_read)
        self.query_one("#room-input", Input).focus()

    # ------------------------------------------------------------------ reading
    def request_read(self) -> None:
        if self._reading:
            return
        self._reading = True
        self.read_room()

    @work(thread=True, exit_on_error=False, group="warroom-read")
    def read_room(self) -> None:
        try:
            state, error = self.session.warroom_state(self.incident_id), None
        except Exception as exc:  # shown in the header, never raised into the UI
            state, error = None, str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        self.post_message(WarroomRead(self.incident_id, state, error))

    def on_warroom_read(self, event: WarroomRead) -> None:
        self._reading = False
        self.reads += 1
        if event.error is not None:
            self.query_one("#room-head", Static).update(literal(f"warroom unavailable: {event.error}", "bold red"))
            return
        self.state = event.state or {}
        room = self.state.get("room")
        self.query_one("#room-oncall", Static).update(oncall_text(self.state))
        if room is None:
            self.query_one("#room-head", Static).update(Text(f"No warroom for {self.label} yet.", "bold yellow"))
            if not self._asked_open:
                self._asked_open = True
                self.ask_open()
            return
        self.show_room(room)

    def show_room(self, room: dict[str, Any]) -> None:
        self.room = room
        self.query_one("#room-head", Static).update(header_text(room))
        roles = self.query_one("#room-roles", Static)
        roles.update(roles_text(room))
        roles.border_title = f"Roles · {room['people']} of {room['max_people']} people"
        checklist = self.query_one("#room-checklist", OptionList)
        highlighted = checklist.highlighted
        checklist.set_options(checklist_options(room))
        if highlighted is not None and room["checklist"]:
            checklist.highlighted = min(highlighted, len(room["checklist"]) - 1)
        left = sum(1 for c in room["checklist"] if not c["done"])
        checklist.border_title = f"Closure checklist · {len(room['checklist']) - left} of {len(room['checklist'])}"
        reminders = self.query_one("#room-reminders", Static)
        reminders.update(reminders_text(room))
        reminders.border_title = f"Reminders · {len(room['reminders'])}" if room["reminders"] else "Reminders"
        log = self.query_one("#room-log", RichLog)
        if len(room["log"]) < self._logged:  # the file was replaced: draw it again
            log.clear()
            self._logged = 0
        for e in room["log"][self._logged :]:
            log.write(log_line(e))
        self._logged = len(room["log"])
        self.query_one("#room-input", Input).disabled = not room["open"]

    # ------------------------------------------------------------------ changing the room
    def change(self, label: str, fn: Callable[[], Any], then: Callable[[], None] | None = None) -> None:
        """Run one change off the UI thread; the result comes back as WarroomChanged."""
        self._change_worker(label, fn, then)

    @work(thread=True, exit_on_error=False, group="warroom-change")
    def _change_worker(self, label: str, fn: Callable[[], Any], then: Callable[[], None] | None) -> None:
        try:
            fn()
            ok, detail = True, label
        except (KeyError, ValueError) as exc:
            ok, detail = False, str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        except Exception as exc:  # reported, never raised into the UI
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        self.post_message(WarroomChanged(label, ok, detail, then))

    def on_warroom_changed(self, event: WarroomChanged) -> None:
        if event.ok:
            self.notify(event.detail, timeout=2, markup=False)
            if event.then is not None:
                event.then()
        else:
            self.notify(f"{event.label}: {event.detail}", severity="error", markup=False, timeout=5)
        self._reading = False
        self.request_read()

    def ask_open(self) -> None:
        def chosen(answer: tuple[str, str] | None) -> None:
            if answer is None:
                self.app.pop_screen()
                return
            ic, scribe = answer
            self.change("warroom opened", lambda: self.session.warroom_open(self.incident_id, ic=ic or None, scribe=scribe or None))

        self.app.push_screen(RoomOpenScreen(self.label, self.session.actor), chosen)

    @on(Input.Submitted, "#room-input")
    def _log_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text or self.room is None:
            return
        kind = str(self.query_one("#room-kind", Select).value)
        entry = event.input

        def clear() -> None:
            entry.value = ""

        self.change(f"logged ({kind})", lambda: self.session.warroom_change(self.incident_id, "write", text=text, kind=kind), clear)

    @on(OptionList.OptionSelected, "#room-checklist")
    def _check_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if self.room is None:
            return
        item = next(c for c in self.room["checklist"] if c["id"] == event.option.id)
        if item["done"]:
            self.notify(f"{item['id']} is ticked already (by {item['done'].get('by')})", markup=False)
            return
        from console.tui.screens.dialogs import PromptScreen

        def entered(detail: str | None) -> None:
            if detail is not None:
                self.change(f"ticked {item['id']}", lambda: self.session.warroom_change(self.incident_id, "check", item=item["id"], detail=detail))

        self.app.push_screen(PromptScreen(f"Tick: {item['text']}", "what backs it (the root cause, the PIR date, ...)"), entered)

    def action_back(self) -> None:
        if isinstance(self.focused, (Input, Select)):
            self.query_one("#room-log").focus()
            return
        self.app.pop_screen()

    def action_focus_log(self) -> None:
        self.query_one("#room-input", Input).focus()

    def action_focus_checklist(self) -> None:
        checklist = self.query_one("#room-checklist", OptionList)
        checklist.focus()
        if checklist.highlighted is None and self.room is not None and self.room["checklist"]:
            todo = [i for i, c in enumerate(self.room["checklist"]) if not c["done"]]
            checklist.highlighted = todo[0] if todo else 0

    def _role_change(self, handover: bool) -> None:
        if self.room is None:
            return
        if handover and not any(r["holders"] for r in self.room["roles"]):
            self.notify("nobody holds a role yet: assign one first (a)", severity="warning")
            return

        def chosen(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            role, person = answer
            what = "handover" if handover else "assign"
            self.change(f"{what}: {role} → {person}", lambda: self.session.warroom_change(self.incident_id, what, role=role, person=person))

        self.app.push_screen(RoleScreen("Hand a role over" if handover else "Assign a role", self.room["roles"], handover), chosen)

    def action_assign(self) -> None:
        self._role_change(False)

    def action_handover(self) -> None:
        self._role_change(True)

    def action_close_room(self) -> None:
        if self.room is None or not self.room["open"]:
            return
        missing = [c["id"] for c in self.room["checklist"] if not c["done"]]
        if missing:
            self.notify("closure checklist incomplete: " + ", ".join(missing), severity="error", markup=False, timeout=5)
            return
        from console.tui.screens.dialogs import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.change("warroom closed", lambda: self.session.warroom_change(self.incident_id, "close"))

        self.app.push_screen(ConfirmScreen("Close the warroom?", "Every checklist item is ticked. Closing is recorded on the incident's timeline.", "Close room"), answered)
