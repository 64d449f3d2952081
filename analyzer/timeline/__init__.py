"""Incident timelines: receipts from the ledger merged with the ingested logs, traces and metric
series of a window, with phases, the first anomaly, a ranked cause chain, validation, durations
from the data against the receipts' figures, and a chart of the main metric.

Public API: :func:`reconstruct_timeline` returns a :class:`Timeline` (``to_dict``,
``render_table``, ``render_markdown``); :class:`TimelineError` carries a one-line message
(:class:`TimelineNotFound` for what is not there, :class:`TimelineBadInput` for a bad argument).
"""
from analyzer.timeline.model import (
    CauseCandidate,
    Check,
    Duration,
    Evidence,
    IncidentFacts,
    Onset,
    Origin,
    Phase,
    PHASE_ORDER,
    ReceiptRef,
    Timeline,
    TimelineBadInput,
    TimelineError,
    TimelineNotFound,
)
from analyzer.timeline.reconstruct import receipts_timeline, reconstruct_timeline
from analyzer.timeline.settings import TimelineSettings, load_timeline_settings

__all__ = [
    "PHASE_ORDER",
    "CauseCandidate",
    "Check",
    "Duration",
    "Evidence",
    "IncidentFacts",
    "Onset",
    "Origin",
    "Phase",
    "ReceiptRef",
    "Timeline",
    "TimelineBadInput",
    "TimelineError",
    "TimelineNotFound",
    "TimelineSettings",
    "load_timeline_settings",
    "receipts_timeline",
    "reconstruct_timeline",
]
