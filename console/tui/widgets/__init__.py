"""Widgets of the console's main screen; each shows one part of a :class:`~console.tui.view.ConsoleView`."""

from rich.text import Text
from textual.widgets import Static


def show_text(widget: Static, text: Text, *, fixed_height: bool = False) -> None:
    """Update a Static only when its text changed, and ask for a layout only when the number of
    lines it wraps to changed (a layout of the whole screen is the costliest thing a refresh does)."""
    if getattr(widget, "_shown_text", None) == text:
        return
    widget._shown_text = text  # type: ignore[attr-defined]
    layout = False
    if not fixed_height:
        width = widget.content_region.width
        lines = len(text.wrap(widget.app.console, width)) if width > 0 else -1
        layout = lines != getattr(widget, "_shown_lines", None) or lines < 0
        widget._shown_lines = lines  # type: ignore[attr-defined]
    widget.update(text, layout=layout)
