"""One-line bars: the status bar (mode, clock, speed, governor), session metrics, panel tabs."""
from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.widgets import Static

from console.tui.text import SEVERITY_STYLE, clock, duration, literal, stamp
from console.tui.view import ConsoleView
from console.tui.widgets import show_text

MODE_BADGE = {"attached": ("ATTACHED", "bold white on dark_cyan"), "live": ("LIVE", "bold white on dark_green"), "scenario": ("SCENARIO", "bold black on yellow"), "replay": ("REPLAY", "bold white on blue"), "virtual": ("VIRTUAL", "bold white on grey37")}


def _speed(x: float) -> str:
    return f"×{x:g}"


def fitted(widget: Static, build: "Callable[[ConsoleView, int], Text]", v: ConsoleView, levels: int) -> Text:
    """The fullest of ``build(v, 0..levels-1)`` (0 fullest) that fits the widget's width; the
    shortest when none does (it is then cut with an ellipsis)."""
    width = widget.size.width
    t = build(v, 0)
    level = 1
    while width > 0 and t.cell_len > width and level < levels:
        t = build(v, level)
        level += 1
    return t


class StatusBar(Static):
    """Mode, fleet, engine time, speed, run state, governor switches, open incidents; shorter
    forms (time of day only, short labels) when the terminal is narrow."""

    def show(self, v: ConsoleView) -> None:
        show_text(self, fitted(self, self.build, v, 4), fixed_height=True)

    @staticmethod
    def build(v: ConsoleView, short: int = 0) -> Text:
        """The bar's text; ``short`` 1 drops the date and shortens labels, 2 shortens more, 3
        leaves out the fleet's name when a real source is named."""
        label, style = MODE_BADGE.get(v.mode, (v.mode.upper(), "reverse"))
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f" {label} ", style)
        t.append(" ")
        if short < 3 or v.source == "sim":
            t.append_text(literal(v.fleet_name, "bold"))
            if v.source != "sim":
                t.append(" via ", "dim")
        if v.source != "sim":
            t.append_text(literal(v.source, "bold cyan"))
        stale = v.stale_signals
        if stale:
            t.append(" ")
            t.append(f" STALE: {stale} signal{'s' if stale != 1 else ''} " if not short else f" STALE: {stale} ", "bold black on yellow")
        t.append(f"  {stamp(v.now_ms) if not short else clock(v.now_ms)}  " if short < 2 else f" {clock(v.now_ms)} ")
        if v.crash:
            t.append(" ENGINE STOPPED ", "bold white on red")
        elif v.paused:
            t.append(" ⏸ PAUSED ", "bold black on yellow")
        else:
            t.append("▶ ", "green")
        t.append(_speed(v.speed), "bold")
        t.append("  ")
        if v.kill_switch:
            t.append(" KILL SWITCH ", "bold white on red")
            t.append(" ")
        if v.dry_run:
            t.append(" DRY-RUN ", "bold black on yellow")
            t.append(" ")
        if not v.kill_switch and not v.dry_run:
            t.append("automation on" if not short else "auto on", "green")
            t.append("  ")
        open_rows = [r for r in v.incidents if r.open]
        if open_rows:
            worst = min(open_rows, key=lambda r: r.severity).severity
            t.append(f"{len(open_rows)} open ", "bold")
            t.append(worst, SEVERITY_STYLE.get(worst, ""))
        else:
            t.append("no open incidents" if short < 2 else "none open", "green")
        if v.delivery_failures:
            t.append("  ")
            t.append(f" UNSENT {v.delivery_failures} ", "bold white on red")
        if v.faults:
            t.append(f"  faults {len(v.faults)}", "red")
        if v.script is not None:
            done, total = v.script
            t.append(f"  {'replay' if v.mode == 'replay' else 'script'} {done}/{total}", "cyan")
        if v.mode in ("replay", "attached") and short < 2:
            t.append("  ")
            t.append_text(literal(v.title, "dim"))
        return t


class MetricsBar(Static):
    """Session figures: time to detect, time to mitigate, MTTR (means) and auto-resolution;
    shorter labels when the terminal is narrow."""

    def show(self, v: ConsoleView) -> None:
        show_text(self, fitted(self, self.build, v, 3), fixed_height=True)

    @staticmethod
    def build(v: ConsoleView, short: int = 0) -> Text:
        """The bar's text; ``short`` 1 and 2 are shorter forms of the same figures."""
        m = v.metrics
        t = Text(no_wrap=True, overflow="ellipsis")
        for label, value in (("TTD", m.ttd_ms), ("TTM", m.ttm_ms), ("MTTR", m.mttr_ms)):
            t.append(f" {label} ", "bold")
            t.append(duration(value))
            t.append(" ")
        t.append(" auto-resolved " if not short else " auto ", "bold")
        if m.auto_rate is None:
            t.append("-")
        else:
            pct = round(100 * m.auto_rate)
            t.append(f"{m.auto_resolved}/{m.decided} {pct}%", "green" if pct >= 95 else ("yellow" if pct >= 80 else "red"))
        if not short:
            t.append(f"   incidents {m.incidents}: {m.open} open, {m.resolved} resolved, {m.escalated} escalated", "dim")
        elif short == 1:
            t.append(f"  {m.open} open, {m.resolved} resolved, {m.escalated} escalated", "dim")
        else:
            t.append(f"  {m.open} open {m.resolved} res {m.escalated} esc", "dim")
        return t


PANEL_NAMES = (("fleet", "Fleet"), ("detail", "Incident"), ("infra", "Regions·queues"), ("receipts", "Receipts"), ("notices", "Notices"))


class PanelTabs(Static):
    """On small terminals one panel shows at a time under the incidents; keys 1-5 switch."""

    def show(self, current: str) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        for i, (key, name) in enumerate(PANEL_NAMES, 1):
            style = "bold reverse" if key == current else "dim"
            t.append(f" {i} {name} ", style)
            t.append(" ")
        show_text(self, t, fixed_height=True)
