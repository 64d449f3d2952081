"""The help screen (``?``): every key, generated from the bindings, and what each panel shows."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

PANELS = (
    ("Status bar", "mode (LIVE, SCENARIO, REPLAY, ATTACHED to an engine of another process), fleet and where its signals come from (via prometheus, alertmanager, file; STALE: n signals when a source stopped answering: those values show as ?), engine time (UTC), pause state, speed, kill switch / dry-run, open incidents, UNSENT notifications, active faults."),
    ("Metrics", "session means of time to detect (first anomaly to detection), time to mitigate (detection to first action) and MTTR (detection to recovery), and auto-resolved incidents among those resolved or escalated."),
    ("Incidents", "every incident of the session: severity, type and entity, state, age, and the acknowledgement column: 'auto' while automation handles it, a countdown to the severity's ack SLA once a human is paged, 'late' past it, ✓ and the name once acknowledged."),
    ("Incident", "the selected incident: runbook steps (✓ done, ▶ running, · pending, ✗ failed, – skipped) with metrics before → after each action, and the recovery criteria with how long they have held against the runbook's hold window."),
    ("Fleet", "per service: requests/s, error %, P99 with sparklines of the last samples. Services an incident touches come first (● marks health; ○ failing health checks)."),
    ("Regions·queues", "region health and DNS weights, circuit breakers not CLOSED, queue depth per tenant with concurrency and quota."),
    ("Receipts", "each signed receipt as the ledger writes it; ✓ means the console checked its signature and payload against the trusted keys, ✗ shows why not."),
    ("Notices", "pages and chat updates as they are sent, escalations, faults, scaling and governor changes, and the results of your actions; its title says who is on call now and next (with a roster) and how many notifications could not be delivered."),
    ("Timeline (t)", "the analyzer's reconstruction of the incident as `ggen timeline` prints it (phases, evidence with its source, cause chain, validation, durations, chart), from the ingested logs, traces and metrics when there are some for its window, from the signed receipts otherwise; 2 its Markdown, 3 the engine's raw event log."),
    ("Warroom (W)", "the incident's warroom: header, roles (at most 10 people), closure checklist (Enter ticks an item), reminders, on call and failed deliveries, and the scribe log: every line, role change and tick is recorded by the engine on the incident's timeline as a signed receipt."),
)


def binding_rows(bindings: list[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for b in bindings:
        if isinstance(b, Binding) and b.description:
            keys = b.key_display or ", ".join(k.strip().replace("question_mark", "?") for k in b.key.split(","))
            rows.append((keys, b.description))
    return rows


class HelpScreen(ModalScreen[None]):
    """Keys and panels."""

    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close")]

    def __init__(self, sections: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        t = Text()
        for title, bindings in self.sections:
            t.append(f"{title}\n", "bold underline")
            for keys, desc in binding_rows(bindings):
                t.append(f"  {keys:<14}", "bold cyan")
                t.append(f"{desc}\n")
            t.append("\n")
        t.append("Command palette\n", "bold underline")
        t.append("  ctrl+p        ", "bold cyan")
        t.append("every action by name, and every fault of the chaos menu\n\n")
        t.append("Panels\n", "bold underline")
        for name, desc in PANELS:
            t.append(f"  {name}: ", "bold")
            t.append(f"{desc}\n")
        t.append("\nDestructive actions (escalate, mitigate, inject, kill switch, dry-run off) ask for confirmation. "
                 "Every action is recorded by the engine as an event (and a signed receipt) with you as the actor.\n", "dim")
        with VerticalScroll(id="dialog", classes="help"):
            yield Label(Text("ggen console · help", "bold"), id="dialog-title")
            yield Static(t)
            yield Static(Text("Esc or ? to close", "dim"))
