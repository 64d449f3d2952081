"""The fleet table: one line per service with rate, errors and P99 and their sparklines.

It is a Line API widget: only the lines on screen are drawn, so a fleet of hundreds of services
costs what the terminal shows, not what the fleet holds. Services touched by an open incident
float to the top (most severe first), then services with a warning, then the rest in fleet order.
"""
from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.cli.common import safe_text
from console.tui.text import LEVEL_STYLE, SEVERITY_STYLE, fixed, number, sparkline
from console.tui.view import ServiceRow

_LEVEL_RANK = {"alert": 0, "stale": 1, "warn": 2, "ok": 3}
_SEV_RANK = {"Sev1": 1, "Sev2": 2, "Sev3": 3, "Sev4": 4}


def health_order(rows: list[ServiceRow]) -> list[ServiceRow]:
    """Alerts first (most severe incident first), then unknown (stale), then warnings, then fleet order."""
    return sorted(rows, key=lambda r: (_LEVEL_RANK[r.level], _SEV_RANK.get(r.severity or "", 9), r.order))


class FleetTable(ScrollView, can_focus=True):
    """Per-service signals with sparklines, drawn line by line."""

    DEFAULT_CSS = """
    FleetTable { overflow-x: hidden; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.rows: list[ServiceRow] = []
        self.by_health = True
        self._styles: dict[str, Style] = {}
        self.floors: dict[str, float] = {}

    def show(self, rows: list[ServiceRow], floors: dict[str, float] | None = None) -> None:
        if floors is not None:
            self.floors = floors
        self.rows = health_order(rows) if self.by_health else sorted(rows, key=lambda r: r.order)
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows) + 1)
        self.refresh()

    def toggle_order(self) -> bool:
        self.by_health = not self.by_health
        self.show(self.rows)
        return self.by_health

    def on_resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows) + 1)

    def _style(self, spec: str) -> Style:
        st = self._styles.get(spec)
        if st is None:
            st = self._styles[spec] = self.rich_style + Style.parse(spec) if spec else self.rich_style
        return st

    def _layout(self, width: int) -> tuple[int, int]:
        """(name width, sparkline width) for a content width."""
        longest = max((len(r.name) for r in self.rows), default=8)
        name_w = max(8, min(longest, 24, width // 4))
        fixed = 2 + name_w + 3 * (1 + 6 + 1)
        spark_w = max(0, min(40, (width - fixed) // 3))
        return name_w, spark_w

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        name_w, spark_w = self._layout(width)
        if y == 0:
            head = f"  {'service':<{name_w}} {'req/s':>6} {'':{spark_w}} {'err %':>6} {'':{spark_w}} {'P99 ms':>6} {'':{spark_w}}"
            return Strip([Segment(head[:width].ljust(width), self._style("bold"))], width)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        r = self.rows[index]
        level = LEVEL_STYLE.get(r.level, "")
        mark_style = SEVERITY_STYLE.get(r.severity or "", level) if r.severity else level
        name = safe_text(r.name)
        if len(name) > name_w:
            name = name[: name_w - 1] + "…"
        err_style = level if r.level != "ok" else ""
        mark = "?" if r.stale else ("●" if r.healthy else "○")  # unknown is never drawn as healthy (nor as down)
        segs = [
            Segment(mark, self._style(mark_style)),
            Segment(" "),
            Segment(f"{name:<{name_w}}", self._style("bold" if r.critical else "")),
            Segment(f" {number(r.rps):>6} ", self._style("")),
            Segment(sparkline(r.rps_hist, spark_w), self._style("blue")),
            Segment(f" {fixed(r.error_pct, '>6.2f')} ", self._style(err_style)),
            Segment(sparkline(r.err_hist, spark_w, self.floors.get("error_pct", 0.0)), self._style("red" if r.level != "ok" else "dark_red")),
            Segment(f" {number(r.p99_ms):>6} ", self._style(err_style)),
            Segment(sparkline(r.p99_hist, spark_w, self.floors.get("p99_ms", 0.0)), self._style("yellow" if r.level != "ok" else "dark_goldenrod")),
        ]
        strip = Strip(segs).crop(0, width)
        return strip.extend_cell_length(width, self.rich_style)
