"""Knowledge base: past incidents as searchable case files (section 05 of the runbooks).

Entries are Markdown files with YAML front matter under ``runbooks/knowledge-base/`` (and the
team's own under ``<data dir>/knowledge-base/``); a tantivy index in the data directory serves
``ggen knowledge search`` and :func:`similar_incidents`.
"""
from __future__ import annotations

from .entry import CAUSES, INCIDENT_TYPES, PATTERNS, SEVERITIES, Entry, EntryError, EntryMeta, read_entry
from .index import (
    KnowledgeBase,
    RefreshReport,
    SearchHit,
    SearchRequest,
    SearchResult,
    Snippet,
    default_entry_dirs,
    make_request,
    team_entry_dir,
)
from .pir import PirDocument, PirError, PirRefused, add_from_pir, pir_to_entry, read_pir
from .settings import PACKAGED_DIR, SearchSettings, load_settings
from .similar import similar_incidents
from .stats import KnowledgeStats, compute_stats

__all__ = [
    "CAUSES",
    "INCIDENT_TYPES",
    "PACKAGED_DIR",
    "PATTERNS",
    "SEVERITIES",
    "Entry",
    "EntryError",
    "EntryMeta",
    "KnowledgeBase",
    "KnowledgeStats",
    "PirDocument",
    "PirError",
    "PirRefused",
    "RefreshReport",
    "SearchHit",
    "SearchRequest",
    "SearchResult",
    "SearchSettings",
    "Snippet",
    "add_from_pir",
    "compute_stats",
    "default_entry_dirs",
    "load_settings",
    "make_request",
    "pir_to_entry",
    "read_entry",
    "read_pir",
    "similar_incidents",
    "team_entry_dir",
]
