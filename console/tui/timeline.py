"""The timeline screen's reconstruction: the analyzer's timeline of an incident, as ``ggen
timeline`` prints it, with styles for the terminal.

:func:`reconstruct_for` runs in a worker thread. It reads the data directory's ledger (its own
read-only connection: the engine keeps appending) and, when the analyzer database has logs,
traces or metrics for the incident's window, merges them in (:func:`reconstruct_timeline`);
otherwise the timeline comes from the signed receipts alone (:func:`receipts_timeline`), and the
screen says which. :func:`styled_table` turns the CLI's table into styled text without ever
interpreting what came from logs (markup stays literal, escape codes are made visible).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from console.tui.text import literal

SECTIONS = ("PHASES", "FIRST ANOMALY", "CAUSE CHAIN", "VALIDATION", "DURATIONS", "EVIDENCE", "CHART", "RECEIPTS")
SOURCE_STYLE = {"log": "cyan", "metric": "magenta", "trace": "blue", "receipt": "green"}
CHECK_STYLE = {"ok": "green", "WARN": "bold yellow", "n/a": "dim"}
_EVIDENCE = re.compile(r"^  (\d\d:\d\d:\d\d\.\d{3}) (log|metric|trace|receipt)( +)")
_CHECK = re.compile(r"^  \[ *(ok|WARN|n/a)\] ")
_PHASE = re.compile(r"^  (\d\d:\d\d:\d\d\.\d{3})  ([A-Z][A-Z ]{14}) ")  # the phase name is padded to 15


@dataclass
class Reconstruction:
    """A timeline (or why there is none) and what it was built from."""

    timeline: Any  # analyzer.timeline.Timeline, or None
    basis: str  # "analyzer database ..." or "receipts only ..."
    error: str | None = None

    def table(self, width: int) -> str:
        """The table of ``ggen timeline`` (its wrapping at ``width`` columns)."""
        if self.timeline is None:
            return ""
        from analyzer.timeline.render import render_table

        return render_table(self.timeline, width=max(60, width))

    def markdown(self) -> str:
        return self.timeline.render_markdown() if self.timeline is not None else ""


def reconstruct_for(data_dir: Any, incident_id: str) -> Reconstruction:
    """The incident's timeline from the data directory: receipts merged with the analyzer
    database's logs, traces and metrics when it holds data for the window, else receipts alone."""
    if data_dir is None:
        return Reconstruction(None, "", "this session keeps no receipts (no data directory): the event log is all there is")
    try:
        from analyzer.timeline import TimelineError, TimelineNotFound, receipts_timeline, reconstruct_timeline
    except ImportError as exc:
        return Reconstruction(None, "", f"the analyzer is not installed ({exc}): the event log is all there is")
    from engine.receipts import KeyStore, Ledger, LedgerError
    from engine.receipts.keys import KeyStoreError

    if not data_dir.ledger_path.exists():
        return Reconstruction(None, "", f"no ledger in {data_dir.root} yet: the event log is all there is")
    try:
        ledger = Ledger(data_dir.ledger_path, readonly=True)
    except LedgerError as exc:
        return Reconstruction(None, "", f"the ledger cannot be read: {exc}")
    try:
        anchors = KeyStore.open(data_dir.keys_dir).anchors() if KeyStore.exists(data_dir.keys_dir) else None
    except (KeyStoreError, OSError):
        anchors = None  # receipts then show as unverified, which the timeline says per receipt
    db = data_dir.analyzer_db_path
    why = f"no analyzer database ({db.name}) in the data directory: `ggen ingest` adds logs, traces and metrics"
    try:
        if db.exists():
            try:
                tl = reconstruct_timeline(db, incident_id=incident_id, ledger=ledger, anchors=anchors)
                c = tl.counts
                basis = f"analyzer database {db.name}: {c.get('log_records', 0)} log records, {c.get('traces', 0)} traces, {c.get('metric_samples', 0)} metric samples, {c.get('receipts', 0)} receipts"
                return Reconstruction(tl, basis)
            except TimelineNotFound as exc:
                if "no logs, traces or metrics" not in str(exc):
                    raise
                why = f"the analyzer database has no logs, traces or metrics for this incident's window ({db.name})"
            except TimelineError as exc:
                why = f"the analyzer database could not be used: {exc}"
        tl = receipts_timeline(ledger, incident_id, anchors)
        return Reconstruction(tl, f"receipts only: {why}")
    except TimelineError as exc:
        return Reconstruction(None, "", str(exc))
    finally:
        ledger.close()


def styled_table(text: str) -> Text:
    """The CLI's timeline table with headings, phases, checks and evidence source tags styled.
    Every line goes through :func:`literal` first: log text is shown exactly as it was logged."""
    out = Text()
    section = ""
    for line in text.rstrip("\n").split("\n"):
        t = literal(line)
        head = line.split("  ")[0].strip()
        if line and not line.startswith(" ") and any(line.startswith(s) for s in SECTIONS):
            section = next(s for s in SECTIONS if line.startswith(s))
            t.stylize("bold underline", 0, len(section))
            t.stylize("dim", len(section))
        elif line.startswith("note:"):
            t.stylize("dim italic")
        elif section == "EVIDENCE" and (m := _EVIDENCE.match(line)):
            t.stylize("dim", m.start(1), m.end(1))
            t.stylize(SOURCE_STYLE.get(m.group(2), ""), m.start(2), m.end(2))
            arrow = line.rfind("  <- ")
            if arrow > 0:
                t.stylize("dim", arrow)
        elif section == "VALIDATION" and (m := _CHECK.match(line)):
            t.stylize(CHECK_STYLE.get(m.group(1), ""), 0, m.end())
        elif section == "PHASES" and (m := _PHASE.match(line)):
            t.stylize("dim", m.start(1), m.end(1))
            t.stylize("bold", m.start(2), m.start(2) + len(m.group(2).rstrip()))
        elif section == "RECEIPTS" and head:
            for needle, style in ((" failed", "bold red"), (" not verified", "yellow"), (" verified", "green")):
                at = line.find(needle)
                if at > 0:
                    t.stylize(style, at + 1)
                    break
        elif line.lstrip().startswith("<- "):
            t.stylize("dim")
        out.append_text(t)
        out.append("\n")
    out.rstrip()
    return out
