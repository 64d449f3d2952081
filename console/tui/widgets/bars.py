"""One-line bars: the status bar (mode, clock, speed, governor), session metrics, panel tabs."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.tui.text import SEVERITY_STYLE, duration, literal, stamp
from console.tui.view import ConsoleView
from console.tui.widgets import show_text

MODE_BADGE = {"attached": ("ATTACHED", "bold white on dark_cyan"), "live": ("LIVE", "bold white on dark_green"), "scenario": ("SCENARIO", "bold black on yellow"), "replay": ("REPLAY", "bold white on blue"), "virtual": ("VIRTUAL", "bold white on grey37")}


def _speed(x: float) -> str:
    return f"×{x:g}"


class StatusBar(Static):
    """Mode, fleet, engine time, speed, run state, governor switches, open incidents."""

    def show(self, v: ConsoleView) -> None:
        label, style = MODE_BADGE.get(v.mode, (v.mode.upper(), "reverse"))
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f" {label} ", style)
        t.append(" ")
        t.append_text(literal(v.fleet_name, "bold"))
        if v.source != "sim":
            t.append(" via ", "dim")
            t.append_text(literal(v.source, "bold cyan"))
        stale = v.stale_signals
        if stale:
            t.append(" ")
            t.append(f" STALE: {stale} signal{'s' if stale != 1 else ''} ", "bold black on yellow")
        t.append(f"  {stamp(v.now_ms)}  ")
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
            t.append("automation on", "green")
            t.append("  ")
        open_rows = [r for r in v.incidents if r.open]
        if open_rows:
            worst = min(open_rows, key=lambda r: r.severity).severity
            t.append(f"{len(open_rows)} open ", "bold")
            t.append(worst, SEVERITY_STYLE.get(worst, ""))
        else:
            t.append("no open incidents", "green")
        if v.delivery_failures:
            t.append("  ")
            t.append(f" UNSENT {v.delivery_failures} ", "bold white on red")
        if v.faults:
            t.append(f"  faults {len(v.faults)}", "red")
        if v.script is not None:
            done, total = v.script
            t.append(f"  {'replay' if v.mode == 'replay' else 'script'} {done}/{total}", "cyan")
        if v.mode in ("replay", "attached"):
            t.append("  ")
            t.append_text(literal(v.title, "dim"))
        show_text(self, t, fixed_height=True)


class MetricsBar(Static):
    """Session figures: time to detect, time to mitigate, MTTR (means) and auto-resolution."""

    def show(self, v: ConsoleView) -> None:
        m = v.metrics
        t = Text(no_wrap=True, overflow="ellipsis")
        for label, value in (("TTD", m.ttd_ms), ("TTM", m.ttm_ms), ("MTTR", m.mttr_ms)):
            t.append(f" {label} ", "bold")
            t.append(duration(value))
            t.append(" ")
        t.append(" auto-resolved ", "bold")
        if m.auto_rate is None:
            t.append("-")
        else:
            pct = round(100 * m.auto_rate)
            t.append(f"{m.auto_resolved}/{m.decided} {pct}%", "green" if pct >= 95 else ("yellow" if pct >= 80 else "red"))
        t.append(f"   incidents {m.incidents}: {m.open} open, {m.resolved} resolved, {m.escalated} escalated", "dim")
        show_text(self, t, fixed_height=True)


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
