"""A compact ASCII chart of one metric over the window, with the phases marked on its time axis."""
from __future__ import annotations

from analyzer.timeline.series import Series
from engine.clock import iso_utc

WIDTH = 60
HEIGHT = 8
MARKS = {"FIRST ANOMALY": "!", "ALERT TRIGGERED": "A", "MITIGATION": "M", "ESCALATED": "E", "RECOVERING": "r", "RECOVERED": "R", "ALL CLEAR": "C"}
LEGEND = "! first anomaly  A alert  M mitigation  E escalated  r recovering  R recovered  C all clear"


def _num(v: float) -> str:
    if abs(v) >= 10_000:
        return f"{v / 1000:.0f}k"
    if abs(v) >= 100 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.1f}"


def draw_chart(s: Series, title: str, marks: list[tuple[int, str]], start_ms: int, end_ms: int, width: int = WIDTH, height: int = HEIGHT) -> tuple[str, list[str]]:
    """``(title, lines)``: columns of '#' up to the highest value in each time slice."""
    pts = [(t, v) for t, v in zip(s.t, s.v) if start_ms <= t <= end_ms]
    if len(pts) < 2:
        return title, []
    t0, t1 = pts[0][0], pts[-1][0]
    step = max(1, (t1 - t0) / width)
    cols: list[float | None] = [None] * width
    for t, v in pts:
        i = min(width - 1, int((t - t0) / step))
        cols[i] = v if cols[i] is None else max(cols[i], v)  # type: ignore[type-var]
    last = None
    for i, v in enumerate(cols):  # a slice without a sample keeps the last value
        if v is None:
            cols[i] = last
        last = cols[i]
    top = max((v for v in cols if v is not None), default=0.0)
    low = min(0.0, min((v for v in cols if v is not None), default=0.0))
    rng = (top - low) or 1.0
    label_w = max(len(_num(top)), len(_num(low)), 3)
    lines = []
    for row in range(height, 0, -1):
        cut = low + rng * (row - 0.5) / height
        cells = "".join("#" if (v is not None and v >= cut and v > low) else " " for v in cols)
        label = _num(top) if row == height else (_num(low) if row == 1 else "")
        lines.append(f"{label:>{label_w}} |{cells}")
    lines.append(" " * label_w + " +" + "-" * width)
    axis = [" "] * width
    for t, name in sorted(marks):
        if name not in MARKS or not (t0 <= t <= t1 + step):
            continue
        i = min(width - 1, max(0, int((t - t0) / step)))
        if axis[i] == " " or name in ("ALERT TRIGGERED", "FIRST ANOMALY"):
            axis[i] = MARKS[name]
    lines.append(" " * label_w + "  " + "".join(axis).rstrip())
    left, right = iso_utc(t0)[11:16], iso_utc(t1)[11:16]
    lines.append(" " * label_w + "  " + left + " " * max(1, width - len(left) - len(right)) + right)
    lines.append(" " * label_w + "  " + LEGEND)
    return f"{title} ({s.name}, {iso_utc(t0)[11:19]} .. {iso_utc(t1)[11:19]} UTC, max {_num(top)})", lines
