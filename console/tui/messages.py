"""Messages the console's workers post back to the UI thread, each named as a fact."""
from __future__ import annotations

from typing import Any

from textual.message import Message

from console.tui.receipts import ReceiptLine
from console.tui.view import ConsoleView


class ViewRefreshed(Message):
    """A fresh reading of the engine is ready to show."""

    def __init__(self, view: ConsoleView) -> None:
        super().__init__()
        self.view = view


class ReceiptsVerified(Message):
    """New receipts were read from the ledger and checked against the trusted keys."""

    def __init__(self, lines: list[ReceiptLine], problem: str | None) -> None:
        super().__init__()
        self.lines = lines
        self.problem = problem


class ActionCompleted(Message):
    """An operator action went through the engine (``ok`` False: refused or failed)."""

    def __init__(self, label: str, ok: bool, detail: str) -> None:
        super().__init__()
        self.label = label
        self.ok = ok
        self.detail = detail


class SimilarIncidentsFound(Message):
    """The knowledge base answered for an incident (``error`` when it could not)."""

    def __init__(self, incident_id: str, hits: list[Any], error: str | None) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.hits = hits
        self.error = error


class PirDrafted(Message):
    """A PIR draft (or the facts for one) was assembled for an incident."""

    def __init__(self, incident_id: str, text: str, source: str) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.text = text
        self.source = source


class PirSaved(Message):
    """A PIR draft was written to the data directory (``error`` when it was not)."""

    def __init__(self, path: str | None, error: str | None) -> None:
        super().__init__()
        self.path = path
        self.error = error


class TimelineReconstructed(Message):
    """The analyzer reconstructed an incident's timeline (or said why it could not)."""

    def __init__(self, incident_id: str, result: Any) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.result = result


class WarroomRead(Message):
    """An incident's warroom was read (``state['room']`` None: not opened; ``error``: unreadable)."""

    def __init__(self, incident_id: str, state: dict[str, Any] | None, error: str | None) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.state = state
        self.error = error


class WarroomChanged(Message):
    """A change to a warroom went through the engine (``ok`` False: refused, ``detail`` says why)."""

    def __init__(self, label: str, ok: bool, detail: str, then: Any = None) -> None:
        super().__init__()
        self.label = label
        self.ok = ok
        self.detail = detail
        self.then = then
