"""Small modal dialogs: confirm a destructive action, type a line of text, see an engine crash."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.tui.text import literal


class ConfirmScreen(ModalScreen[bool]):
    """Ask before an action that changes the fleet or pages people: y confirms, n or Esc cancels."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel", show=False),
    ]

    def __init__(self, title: str, body: Text | str, confirm_label: str = "Yes") -> None:
        super().__init__()
        self.title_text = title
        self.body = body if isinstance(body, Text) else literal(body)
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm"):
            yield Label(literal(self.title_text, "bold"), id="dialog-title")
            yield Static(self.body, id="dialog-body")
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.confirm_label} (y)", variant="error", id="yes", compact=True)
                yield Button("Cancel (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptScreen(ModalScreen[str | None]):
    """One line of text (a note for the incident log, a reason)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(literal(self.title_text, "bold"), id="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static(Text("Enter to save, Esc to cancel", "dim"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        self.dismiss(text or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class CrashScreen(ModalScreen[None]):
    """The engine thread died: say so, show its traceback as text, keep the console usable."""

    BINDINGS = [Binding("escape", "dismiss_crash", "Back"), Binding("q", "app.quit", "Quit")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="crash"):
            yield Label(Text("The engine stopped", "bold white on red"), id="dialog-title")
            yield Static(
                Text(
                    "Detection and automated mitigation are not running. Every event up to the crash is in the ledger. "
                    "Restart `ggen console` (or `ggen watch`) to resume; the traceback below is what the engine raised.",
                ),
            )
            with VerticalScroll(id="crash-trace"):
                yield Static(literal(self.text), id="crash-text")
            yield Static(Text("Esc: back to the console · q: quit", "dim"))

    def action_dismiss_crash(self) -> None:
        self.dismiss(None)
