"""Scrolling feeds: signed receipts (each marked verified or not) and notices/notifications."""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import RichLog

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
    t = Text(no_wrap=True, overflow="ellipsis")
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
    t = Text(no_wrap=True, overflow="ellipsis")
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


class ReceiptLog(RichLog):
    """Receipts as the ledger signs them; the mark is the console's own check of each one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=1000, wrap=True, min_width=20, markup=False, highlight=False, auto_scroll=True, **kwargs)

    def add(self, lines: list[ReceiptLine]) -> None:
        for r in lines:
            self.write(receipt_text(r))


class NoticeLog(RichLog):
    """Notifications (pages, chat updates), escalations and engine notices as they happen."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=1000, wrap=True, min_width=20, markup=False, highlight=False, auto_scroll=True, **kwargs)

    def add(self, notices: list[dict[str, Any]]) -> None:
        for n in notices:
            self.write(notice_text(n))
