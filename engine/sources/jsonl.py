"""The file source: follow a JSON Lines stream of metric samples (a recording, or another tool's pipe).

One sample or a few per line, each a JSON object:

    {"ts_ms": 1767225600000, "kind": "service", "entity": "app", "signal": "p99_ms", "value": 1834.0}
    {"ts": "2026-01-01T00:00:01Z", "service": "app", "signals": {"p99_ms": 1840, "error_pct": 0.4}}
    {"tenant": "acct-1001", "signals": {"depth": 1250, "lag_p99_s": 340}}

The entity is ``kind`` + ``entity``, or one of the keys ``service``, ``queue`` (or ``tenant``),
``circuit``, ``region``. Values are numbers; ``null`` means "no value" (the signal goes stale).
The time (``ts_ms``, or ``ts``/``time`` in RFC 3339) is optional: with ``pace = "arrival"`` a
sample counts from when it is read; with ``pace = "timestamps"`` samples are released at the
pace of their time stamps (relative to the first), so a recording replays as it happened.

The file is followed like ``tail -F``: appended lines are read as they come, a truncated or
replaced file is read again from its start, a file that does not exist yet is waited for. ``-``
reads standard input. A line that is not a valid sample is counted and its reason kept (with its
line number) and announced, never silently dropped.
"""
from __future__ import annotations

import json
import os
import sys
from collections import deque
from typing import Any, BinaryIO

from engine.clock import parse_iso_ms
from engine.sources.base import SignalSource, clean_value
from engine.sources.mapping import SIGNALS, FileMapping

_SHORTHAND = {"service": "service", "queue": "queue", "tenant": "queue", "circuit": "circuit", "region": "region"}
MAX_LINE_BYTES = 1024 * 1024


class BadSample(ValueError):
    """A line that is not a valid sample; the message says why."""


def parse_sample_line(line: bytes, renames: FileMapping | None = None) -> tuple[int | None, list[tuple[str, str, str, float | None]]]:
    """One line -> (time in ms or None, [(kind, entity, signal, value or None)]). Raises BadSample."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise BadSample(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise BadSample("not a JSON object")
    ts: int | None = None
    if "ts_ms" in obj:
        if not isinstance(obj["ts_ms"], int) or isinstance(obj["ts_ms"], bool):
            raise BadSample("ts_ms must be an integer (ms since the epoch)")
        ts = obj["ts_ms"]
    else:
        for key in ("ts", "time"):
            if key in obj:
                try:
                    ts = parse_iso_ms(str(obj[key]))
                except ValueError:
                    raise BadSample(f"{key} {str(obj[key])[:40]!r} is not an RFC 3339 time") from None
                break
    if "kind" in obj:
        kind = obj["kind"]
        if kind not in SIGNALS:
            raise BadSample(f"kind {str(kind)[:40]!r} is not one of service, queue, circuit, region")
        entity = obj.get("entity")
    else:
        found = [k for k in _SHORTHAND if k in obj]
        if len(found) != 1:
            raise BadSample("name the entity with kind + entity, or exactly one of service, queue (tenant), circuit, region")
        kind, entity = _SHORTHAND[found[0]], obj[found[0]]
    if not isinstance(entity, str) or not entity:
        raise BadSample("the entity name must be a non-empty string")
    if renames is not None:
        entity = renames.rename.apply(kind, entity)
    if "signals" in obj:
        values = obj["signals"]
        if not isinstance(values, dict) or not values:
            raise BadSample("signals must be a non-empty object of signal: value")
    elif "signal" in obj:
        values = {obj["signal"]: obj.get("value")}
    else:
        raise BadSample("no signal: give signal + value, or signals")
    out: list[tuple[str, str, str, float | None]] = []
    for name, value in values.items():
        if name not in SIGNALS[kind]:
            raise BadSample(f"{kind} has no signal {str(name)[:40]!r}")
        if value is None:
            out.append((kind, entity, name, None))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((kind, entity, name, clean_value(float(value))))
        else:
            raise BadSample(f"{name}: {str(value)[:40]!r} is not a number")
    return ts, out


class FileSource(SignalSource):
    """Follows a JSON Lines file (or stdin) of samples."""

    kind = "file"

    def __init__(
        self,
        path: str,
        mapping: FileMapping | None = None,
        *,
        from_start: bool = True,
        pace: str = "arrival",
        poll_ms: int = 200,
        stale_after_ms: int = 15_000,
    ) -> None:
        super().__init__(path, stale_after_ms)
        self.path = path
        self.mapping = mapping
        self.from_start = from_start
        self.pace = pace
        self.poll_s = poll_ms / 1000.0
        self.lines = 0
        self.samples = 0
        self.bad_lines = 0
        self.bad: deque[dict[str, Any]] = deque(maxlen=20)
        self._anchor: tuple[int, int] | None = None  # (first sample's ts, engine time it was released)
        self.finished = False  # stdin reached its end

    # ------------------------------------------------------------------ following
    def run(self) -> None:
        if self.path == "-":
            self._follow_stream(sys.stdin.buffer)
            return
        fh: BinaryIO | None = None
        ident: tuple[int, int] | None = None
        pos = 0
        buf = b""
        first = True
        while not self._stop.is_set():
            if fh is None:
                try:
                    fh = open(self.path, "rb")
                except OSError as exc:
                    self.last_error = f"cannot open {self.path}: {exc.strerror or exc}; waiting for it"
                    self.attempted = True
                    self._stop.wait(self.poll_s)
                    continue
                st = os.fstat(fh.fileno())
                ident = (st.st_dev, st.st_ino)
                if first and not self.from_start:
                    fh.seek(0, os.SEEK_END)
                first = False
                pos = fh.tell()
                buf = b""
                self.last_error = None
            chunk = fh.read(256 * 1024)
            if chunk:
                pos += len(chunk)
                buf = self._consume(buf + chunk)
                continue
            self.attempted = True
            # At the end: has the file been truncated or replaced (log rotation)?
            try:
                st = os.stat(self.path)
                if (st.st_dev, st.st_ino) != ident or st.st_size < pos:
                    fh.close()
                    fh = None
                    continue
            except OSError:
                pass
            self._stop.wait(self.poll_s)
        if fh is not None:
            fh.close()

    def _follow_stream(self, stream: BinaryIO) -> None:
        buf = b""
        while not self._stop.is_set():
            chunk = stream.read1(64 * 1024) if hasattr(stream, "read1") else stream.read(64 * 1024)
            if not chunk:
                if buf.strip():
                    self._line(buf)
                self.finished = True
                self.attempted = True
                return
            buf = self._consume(buf + chunk)
            self.attempted = True

    def _consume(self, buf: bytes) -> bytes:
        """Handle every complete line of ``buf``; return the unfinished rest."""
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_LINE_BYTES:
                    self.lines += 1
                    self._bad(f"line longer than {MAX_LINE_BYTES} bytes")
                    return b""
                return buf
            line, buf = buf[:nl], buf[nl + 1 :]
            self._line(line)

    def _line(self, line: bytes) -> None:
        self.lines += 1
        if not line.strip():
            return
        try:
            ts, samples = parse_sample_line(line, self.mapping)
        except BadSample as exc:
            self._bad(str(exc))
            return
        if self.pace == "timestamps" and ts is not None:
            self._wait_for(ts)
        now = self.clock.now_ms()
        for kind, entity, signal, value in samples:
            if self.known and entity not in self.known.get(kind, set()):
                self.note_unknown(kind, entity)
                continue
            if value is None:
                continue  # "no value": nothing fresh, the signal goes stale
            self.store.put(kind, entity, signal, value, now)
            self.samples += 1
        self.last_ok_ms = now

    def _wait_for(self, ts: int) -> None:
        if self._anchor is None:
            self._anchor = (ts, self.clock.now_ms())
            return
        due = self._anchor[1] + (ts - self._anchor[0])
        while not self._stop.is_set():
            left = due - self.clock.now_ms()
            if left <= 0:
                return
            speed = getattr(self.clock, "speed", 1.0) or 1.0
            self._stop.wait(min(0.25, left / 1000.0 / speed))

    def _bad(self, reason: str) -> None:
        self.bad_lines += 1
        self.bad.append({"line": self.lines, "reason": reason})
        self.last_error = f"line {self.lines}: {reason}"
        if self.engine is not None and (self.bad_lines == 1 or self.bad_lines % 1000 == 0):
            self.engine.notice("source.bad_line", f"file {self.path}: line {self.lines}: {reason} ({self.bad_lines} bad line(s) so far)", source=self.kind, line=self.lines)

    def status(self) -> dict[str, Any]:
        st = super().status()
        st.update(lines=self.lines, samples=self.samples, bad_lines=self.bad_lines, bad=list(self.bad), pace=self.pace, finished=self.finished)
        return st
