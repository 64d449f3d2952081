"""The warroom protocol: roles, scribe log recorded as receipts, cadence reminders, closure gate."""
from __future__ import annotations

from engine.warroom.room import (
    EngineRecorder,
    LedgerRecorder,
    Warroom,
    WarroomError,
    WarroomPolicy,
    list_warrooms,
    load_warroom,
    load_warroom_policy,
    open_warroom,
    save_warroom,
)

__all__ = ["EngineRecorder", "LedgerRecorder", "Warroom", "WarroomError", "WarroomPolicy", "list_warrooms", "load_warroom", "load_warroom_policy", "open_warroom", "save_warroom"]
