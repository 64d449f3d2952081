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


from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


class TextView(ScrollView, can_focus=True):
    """A block of text that changes often (the selected incident, the infrastructure summary).

    It wraps the text to its width and draws only the lines on screen. A new text of another
    height resizes the scroll area without a layout of the whole screen."""

    DEFAULT_CSS = """
    TextView { overflow-x: hidden; }
    """

    def __init__(self, text: Text | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.text = text or Text()
        self._wrapped: list[Strip] | None = None
        self._wrapped_width = -1

    def show(self, text: Text) -> None:
        if text == self.text:
            return
        self.text = text
        self._wrapped = None
        self._resize_virtual()
        self.refresh()

    def _lines(self, width: int) -> list[Strip]:
        if self._wrapped is None or width != self._wrapped_width:
            console = self.app.console
            base = self.rich_style
            out = []
            for line in self.text.wrap(console, max(1, width)):
                line.end = ""
                out.append(Strip(list(line.render(console))).apply_style(base).extend_cell_length(width, base).crop(0, width))
            self._wrapped, self._wrapped_width = out, width
        return self._wrapped

    def _resize_virtual(self) -> None:
        width = self.scrollable_content_region.width
        if width <= 0:
            return
        size = Size(width, len(self._lines(width)))
        if size == self.virtual_size:
            return
        self.set_reactive(TextView.virtual_size, size)
        self._refresh_scrollbars()
        if self.show_vertical_scrollbar:
            self.vertical_scrollbar.window_virtual_size = size.height
            self.vertical_scrollbar.window_size = self.scrollable_content_region.height
            self.vertical_scrollbar.refresh()

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width > 0:
            self.virtual_size = Size(width, len(self._lines(width)))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if width <= 0:
            return Strip.blank(0)
        lines = self._lines(width)
        index = int(self.scroll_offset.y) + y
        if index >= len(lines):
            return Strip.blank(width, self.rich_style)
        return lines[index]
