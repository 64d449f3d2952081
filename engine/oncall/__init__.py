"""On-call: the roster (who holds which role when), handoff records between shifts, and the
iCalendar export of the schedule. Headless; the CLI and the console both use it."""

from __future__ import annotations

from typing import Any


def attach_roster(live: Any) -> Any:
    """Make a ``LiveEngine``'s ladder page the people of ``DATA_DIR/roster.toml`` (reloaded when the
    file changes; a broken edit keeps the last good roster and shows an engine notice). Returns
    the roster, or None when the data directory has no roster file (handles are paged then)."""
    path = live.data_dir.roster_path
    if not path.exists():
        return None
    from engine.oncall.roster import RosterFileWatch  # only when there is a roster (not on every start)
    eng = live.engine
    watch = RosterFileWatch(path, on_error=lambda msg: eng.notice("roster.error", msg))
    eng.roster = watch
    return watch
