"""The chaos menu: every fault the engine can inject, with the target it would hit."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from console.tui.text import TYPE_SHORT, literal

FaultChoice = tuple[str, str]  # (fault kind, target)


class TargetScreen(ModalScreen[str | None]):
    """Pick the entity a fault hits (the default first)."""

    BINDINGS = [Binding("escape", "cancel", "Back")]

    def __init__(self, fault: str, targets: list[str], default: str) -> None:
        super().__init__()
        self.fault = fault
        self.targets = [default] + [t for t in targets if t != default]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="menu"):
            yield Label(literal(f"Target for {self.fault}", "bold"), id="dialog-title")
            yield OptionList(*[Option(literal(t), id=str(i)) for i, t in enumerate(self.targets)], id="targets")
            yield Static(Text("Enter: choose · Esc: back", "dim"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.targets[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChaosScreen(ModalScreen[FaultChoice | None]):
    """Choose a fault (Enter: on its default target; t: choose the target)."""

    BINDINGS = [Binding("escape", "cancel", "Back"), Binding("t", "choose_target", "Other target")]

    def __init__(self, menu: list[tuple[str, str, str, str]], targets: dict[str, list[str]]) -> None:
        super().__init__()
        self.menu = menu
        self.targets = targets  # fault kind -> every possible target

    def compose(self) -> ComposeResult:
        width = max(len(k) for k, *_ in self.menu)
        options = []
        for kind, target, itype, desc in self.menu:
            t = Text(no_wrap=True, overflow="ellipsis")
            t.append(f"{kind:<{width}}", "bold")
            t.append("  → ")
            t.append_text(literal(f"{target:<14}", "cyan"))
            t.append(f" {TYPE_SHORT.get(itype, itype):<16}", "magenta")
            t.append_text(literal(desc, "dim"))
            options.append(Option(t, id=kind))
        with Vertical(id="dialog", classes="menu wide"):
            yield Label(Text("Inject a fault (chaos)", "bold"), id="dialog-title")
            yield OptionList(*options, id="faults")
            yield Static(Text("Enter: inject on the target shown · t: other target · Esc: back", "dim"), id="chaos-keys")

    def _highlighted(self) -> tuple[str, str] | None:
        ol = self.query_one("#faults", OptionList)
        if ol.highlighted is None:
            return None
        kind, target, *_ = self.menu[ol.highlighted]
        return kind, target

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        kind, target, *_ = self.menu[event.option_index]
        self.dismiss((kind, target))

    def action_choose_target(self) -> None:
        chosen = self._highlighted()
        if chosen is None:
            return
        kind, default = chosen

        def picked(target: str | None) -> None:
            if target is not None:
                self.dismiss((kind, target))

        self.app.push_screen(TargetScreen(kind, self.targets.get(kind, [default]), default), picked)

    def action_cancel(self) -> None:
        self.dismiss(None)
