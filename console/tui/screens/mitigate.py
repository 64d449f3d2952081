"""Choose a manual mitigation, its target and parameters; the main screen confirms and runs it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from console.tui.actions import MANUAL_ACTIONS, parse_params
from console.tui.text import literal


@dataclass(frozen=True)
class MitigationRequest:
    """What the person asked for; the engine's governor still decides."""

    action: str
    target: str
    params: dict[str, Any]
    reason: str
    incident_id: str | None


class MitigateScreen(ModalScreen[MitigationRequest | None]):
    """Actions on the left; target, parameters and reason below. Enter runs (after a confirmation)."""

    BINDINGS = [Binding("escape", "cancel", "Back")]

    def __init__(self, incident_id: str | None, incident_label: str, defaults: dict[str, str]) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.incident_label = incident_label
        self.defaults = defaults  # action -> default target

    def compose(self) -> ComposeResult:
        width = max(len(a.name) for a in MANUAL_ACTIONS)
        options = []
        for a in MANUAL_ACTIONS:
            t = Text(no_wrap=True, overflow="ellipsis")
            t.append(f"{a.name:<{width}}", "bold")
            t.append(f"  {a.target_kind:<8} ", "magenta")
            t.append(a.description, "dim")
            options.append(Option(t, id=a.name))
        with Vertical(id="dialog", classes="menu wide"):
            yield Label(literal(f"Manual mitigation · {self.incident_label}", "bold"), id="dialog-title")
            yield OptionList(*options, id="actions")
            with Horizontal(classes="field"):
                yield Label("target ", classes="field-label")
                yield Input(id="target", compact=True)
            with Horizontal(classes="field"):
                yield Label("params ", classes="field-label")
                yield Input(id="params", placeholder="key=value ...", compact=True)
            with Horizontal(classes="field"):
                yield Label("reason ", classes="field-label")
                yield Input(id="reason", placeholder="why (recorded in the receipt)", compact=True)
            yield Static("", id="mitigate-error")
            yield Static(Text("Enter: run (asks to confirm) · Tab: edit fields · Esc: back. The safety governor checks every action.", "dim"))

    def on_mount(self) -> None:
        self._fill(MANUAL_ACTIONS[0].name)

    def _fill(self, name: str) -> None:
        a = next(x for x in MANUAL_ACTIONS if x.name == name)
        self.query_one("#target", Input).value = self.defaults.get(name, "")
        params = self.query_one("#params", Input)
        params.value = ""
        params.placeholder = a.params_hint or "(no parameters)"

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id:
            self._fill(event.option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def _submit(self) -> None:
        ol = self.query_one("#actions", OptionList)
        if ol.highlighted is None:
            return
        action = MANUAL_ACTIONS[ol.highlighted].name
        target = self.query_one("#target", Input).value.strip()
        error = self.query_one("#mitigate-error", Static)
        if not target:
            error.update(Text("target: give a service, tenant, circuit or region", "bold red"))
            return
        try:
            params = parse_params(self.query_one("#params", Input).value)
        except ValueError as exc:
            error.update(literal(f"params: {exc}", "bold red"))
            return
        reason = self.query_one("#reason", Input).value.strip() or "manual mitigation from the console"
        self.dismiss(MitigationRequest(action, target, params, reason, self.incident_id))

    def action_cancel(self) -> None:
        self.dismiss(None)
