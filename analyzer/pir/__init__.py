"""Post-incident reviews: drafts pre-filled from receipts and the reconstructed timeline, a
linter for the template's anti-patterns, and the list of drafts with their due dates.

Public API: :func:`create_pir` / :func:`draft_pir` -> :class:`PirDraft`, :func:`write_draft`,
:func:`lint_pir` -> list of :class:`LintFinding`, :func:`list_pirs` -> list of :class:`PirStatus`.
"""
from analyzer.pir.draft import ActionItem, PirDraft, create_pir, draft_pir, due_ms, write_draft
from analyzer.pir.lint import LintFinding, lint_pir, lint_text
from analyzer.pir.listing import PirStatus, list_pirs, read_status
from analyzer.pir.settings import PirSettings, load_pir_settings

__all__ = [
    "ActionItem",
    "LintFinding",
    "PirDraft",
    "PirSettings",
    "PirStatus",
    "create_pir",
    "draft_pir",
    "due_ms",
    "lint_pir",
    "lint_text",
    "list_pirs",
    "load_pir_settings",
    "read_status",
    "write_draft",
]
