"""Scrolling feeds: signed receipts (each marked verified or not) and notices/notifications.

Both are Line API widgets over a bounded list of lines: only the lines on screen are drawn, each
cut to the width with an ellipsis, and the view follows new lines unless you scrolled up.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.tui.receipts import ReceiptLine
from console.tui.text import SEVERITY_STYLE, clock, literal, short_id

NOTICE_LABEL = {
    "fault.injected": ("FAULT", "bold red"),
    "scaling.applied": ("SCALE", "cyan"),
    "scaling.planned": ("PLAN", "yellow"),
    "mitigation.manual": ("MANUAL", "bold cyan"),
    "mitigation.planned": ("PLAN", "yellow"),
    "advisory": ("ADVISE", "yellow"),
    "kill_switch": ("KILL", "bold white on red"),
    "dry_run": ("DRY-RUN", "bold yellow"),
    "receipt.error": ("LEDGER", "bold white on red"),
    "incident.correlated": ("JOINED", "dim"),
    "console": ("YOU", "bold blue"),
    "console.error": ("REFUSED", "bold red"),
    "replay.error": ("REPLAY", "bold red"),
    "delivery.delivered": ("SENT", "green"),
    "delivery.retry": ("RETRY", "yellow"),
    "delivery.failed": ("UNSENT", "bold white on red"),
    "delivery.undelivered": ("UNSENT", "bold white on red"),
}
NOTIFICATION_LABEL = {"page": ("PAGE", "bold magenta"), "info": ("INFO", "blue"), "update": ("UPDATE", "green")}


def receipt_text(r: ReceiptLine) -> Text:
    t = Text()
    t.append(clock(r.observed_at_ms), "dim")
    if r.verified:
        t.append(" ✓ ", "bold green")
    else:
        t.append(" ✗ ", "bold white on red")
    t.append(f"#{r.seq} ", "dim")
    t.append_text(literal(r.kind, "bold" if r.kind == "incident.detected" else ""))
    if r.incident_id:
        t.append(" " + short_id(r.incident_id), "cyan")
    if r.severity:
        t.append(" ")
        t.append(r.severity, SEVERITY_STYLE.get(r.severity, ""))
    t.append(" ")
    t.append_text(literal(r.summary))
    if r.failure:
        t.append("  ")
        t.append_text(literal(r.failure, "bold red"))
    return t


def notice_text(n: dict[str, Any]) -> Text:
    t = Text()
    at = n.get("at_ms")
    t.append(clock(at if isinstance(at, int) else None), "dim")
    kind = str(n.get("kind", ""))
    if kind == "notification":
        label, style = NOTIFICATION_LABEL.get(str(n.get("notification_kind", "page")), ("NOTIFY", "magenta"))
    else:
        label, style = NOTICE_LABEL.get(kind, ((kind.rsplit(".", 1)[-1].replace("_", " ").upper() or "NOTICE")[:8], ""))
    t.append(f" {label:<8} ", style)
    t.append_text(literal(n.get("text", "")))
    return t


class FeedLog(ScrollView, can_focus=True):
    """The last ``max_lines`` lines of a feed, drawn one screen line each."""

    DEFAULT_CSS = """
    FeedLog { overflow-x: hidden; }
    """

    def __init__(self, max_lines: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines: deque[tuple[int, Text]] = deque(maxlen=max_lines)
        self._strips: dict[tuple[int, int], Strip] = {}  # (line number, width) -> drawn line
        self._written = 0
        self._follow = True  # stay on the newest line until the user scrolls up

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._follow = new >= self.max_scroll_y

    def write(self, text: Text) -> None:
        self.add_lines([text])

    def add_lines(self, texts: list[Text]) -> None:
        if not texts:
            return
        for t in texts:
            self.lines.append((self._written, t))
            self._written += 1
        if len(self._strips) > 4 * max(self.size.height, 16):
            self._strips.clear()  # only lines near the screen are worth keeping drawn
        self._grow()
        if self._follow:
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)
        self.refresh()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.lines))

    def _grow(self) -> None:
        """A longer feed needs new scrollbars, not a new layout of the whole screen (which a plain
        ``virtual_size`` change asks for, and which costs tens of milliseconds on a big screen)."""
        size = Size(self.scrollable_content_region.width, len(self.lines))
        if size == self.virtual_size:
            return
        self.set_reactive(FeedLog.virtual_size, size)
        self._refresh_scrollbars()
        if self.show_vertical_scrollbar:
            self.vertical_scrollbar.window_virtual_size = size.height
            self.vertical_scrollbar.window_size = self.scrollable_content_region.height
            self.vertical_scrollbar.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = int(self.scroll_offset.y) + y
        if index >= len(self.lines) or width <= 0:
            return Strip.blank(max(width, 0), self.rich_style)
        number, text = self.lines[index]
        key = (number, width)
        strip = self._strips.get(key)
        if strip is None:
            line = text.copy()
            line.no_wrap = True
            line.overflow = "ellipsis"
            line.truncate(width, overflow="ellipsis")
            segments = list(line.render(self.app.console))
            strip = Strip(segments).apply_style(self.rich_style).extend_cell_length(width, self.rich_style).crop(0, width)
            self._strips[key] = strip
        return strip


class ReceiptLog(FeedLog):
    """Receipts as the ledger signs them; the mark is the console's own check of each one."""

    def add(self, lines: list[ReceiptLine]) -> None:
        self.add_lines([receipt_text(r) for r in lines])


class NoticeLog(FeedLog):
    """Notifications (pages, chat updates), escalations and engine notices as they happen."""

    def add(self, notices: list[dict[str, Any]]) -> None:
        self.add_lines([notice_text(n) for n in notices])
