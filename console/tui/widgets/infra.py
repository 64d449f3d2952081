"""Regions and DNS weights, circuit breakers, tenant queues: the fleet's shared infrastructure."""
from __future__ import annotations

from rich.text import Text

from console.tui.text import LEVEL_STYLE, fixed, known, literal, number, sparkline
from console.tui.view import ConsoleView
from console.tui.widgets import TextView

BREAKER_STYLE = {"CLOSED": "green", "HALF_OPEN": "bold yellow", "OPEN": "bold red"}


class InfraPanel(TextView):
    """Region status and DNS, breaker states and queue depth per tenant."""

    def show_view(self, v: ConsoleView) -> None:
        t = Text()
        t.append("Regions", "bold")
        if v.dns_moving:
            t.append("  DNS change propagating", "bold yellow")
        t.append("\n")
        for r in v.regions:
            ok = r.up and r.failed_checks == 0
            if not r.known:
                t.append(" ? ", LEVEL_STYLE.get("stale", "yellow"))
            else:
                t.append(" ● " if ok else " ○ ", "green" if ok else "bold red")
            t.append_text(literal(r.name, "bold" if r.serving else ""))
            t.append(f" {r.role:<7}", "dim")
            t.append(f" dns {fixed(r.weight_pct, '>5.1f')}%")
            t.append("  serving" if r.serving and known(r.weight_pct) else "         ", "cyan")
            if not r.known:
                t.append("  health unknown", LEVEL_STYLE.get("stale", "yellow"))
            elif r.failed_checks:
                t.append(f"  {r.failed_checks} failed checks", "bold red")
            elif not r.up:
                t.append("  down", "bold red")
            else:
                t.append(f"  lag {fixed(r.replication_lag_ms, '.0f')} ms", "dim")
            t.append("\n")
        unknown = [b for b in v.breakers if b.state == "UNKNOWN"]
        not_closed = [b for b in v.breakers if b.state not in ("CLOSED", "UNKNOWN")]
        t.append("Breakers", "bold")
        t.append(f"  {len(v.breakers) - len(not_closed) - len(unknown)}/{len(v.breakers)} closed", "dim")
        if unknown:
            t.append(f", {len(unknown)} unknown", LEVEL_STYLE.get("stale", "yellow"))
        t.append("\n")
        for b in not_closed:
            t.append(f" {b.state:<10}", BREAKER_STYLE.get(b.state, ""))
            t.append_text(literal(b.name))
            if b.override:
                t.append(" (override)", "magenta")
            t.append("\n")
        if v.queues:
            t.append("Queues", "bold")
            t.append("  depth · lag P99 · concurrency/limit", "dim")
            t.append("\n")
            name_w = min(14, max(len(q.tenant) for q in v.queues))
            for q in v.queues:
                style = LEVEL_STYLE.get(q.level, "")
                t.append_text(literal(f" {q.tenant[:name_w]:<{name_w}}"))
                t.append(f" {number(q.depth):>6} ", style)
                t.append(sparkline(q.depth_hist, 16, v.spark_floor.get("depth", 0.0)), "blue" if q.level == "ok" else style)
                t.append(f" {fixed(q.lag_p99_s, '>5.0f')}s {q.concurrency:>3}/{q.limit}")
                t.append("\n")
        if v.advisories:
            t.append(f"Advisories {v.advisories}", "yellow")
        t.rstrip()
        self.show(t)
