"""Console recordings: what ``ggen console --record FILE`` writes and ``--replay FILE`` plays.

A recording (format ``ggen.console-recording`` version 1) is JSON: the seed, the scenario (if any),
the fleet size, the starting governor modes, and the operator's actions with the engine time (ms
since the engine started) at which each took effect. The JSON of ``ggen drill --json`` is accepted
too (its first result's scenario and seed). Imported only when a session records or replays.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.tui.session import ReplayError

RECORDING_FORMAT = "ggen.console-recording"
ActionKind = Literal["inject", "acknowledge", "escalate", "manual_action", "kill_switch", "dry_run", "note"]


class RecordedAction(BaseModel):
    """One operator action, at ``at_ms`` after the engine started."""

    model_config = ConfigDict(extra="forbid")

    at_ms: int = Field(ge=0)
    kind: ActionKind
    args: dict[str, Any] = Field(default_factory=dict)


class Recording(BaseModel):
    """Enough to run a console session again: seed, scenario, fleet and the operator's actions."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["ggen.console-recording"] = RECORDING_FORMAT
    version: Literal[1] = 1
    seed: int = Field(ge=0)
    scenario: str | None = None
    fleet_size: int | None = Field(default=None, ge=2)
    dry_run: bool = False
    kill_switch: bool = False
    started_at: str | None = None
    ended_at_ms: int | None = None
    source: str | None = None  # what the recording was made from (console, drill)
    actions: list[RecordedAction] = Field(default_factory=list)


def load_recording(path: Path) -> Recording:
    """Read a console recording, or the JSON of ``ggen drill --json`` (its first result)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ReplayError(f"{path}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ReplayError(f"{path}: expected a JSON object (a console recording or `ggen drill --json` output)")
    if "format" in obj:
        if obj.get("format") != RECORDING_FORMAT:
            raise ReplayError(f"{path}: field 'format': {obj.get('format')!r} is not {RECORDING_FORMAT!r}")
        try:
            return Recording.model_validate(obj)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(top)"
            raise ReplayError(f"{path}: field {where!r}: {err['msg']}") from None
    results = obj.get("results")
    if isinstance(results, list):  # ggen drill --json
        if not results:
            raise ReplayError(f"{path}: field 'results' is empty: the drill ran nothing")
        first = results[0]
        where = "results[0]"
    else:
        first, where = obj, "(top)"
    if not isinstance(first, dict) or not isinstance(first.get("scenario"), str) or not isinstance(first.get("seed"), int):
        raise ReplayError(f"{path}: field {where!r}: needs 'scenario' (text) and 'seed' (integer), as `ggen drill --json` writes")
    return Recording(seed=first["seed"], scenario=first["scenario"], source="drill")


class Recorder:
    """Writes the recording as the session goes (rewritten atomically after each action), so a
    crash or a kill loses nothing already done."""

    def __init__(self, path: Path, recording: Recording) -> None:
        self.path = Path(path)
        self.recording = recording
        self._lock = threading.Lock()
        self.write()

    def add(self, at_ms: int, kind: str, args: dict[str, Any]) -> None:
        with self._lock:
            self.recording.actions.append(RecordedAction(at_ms=at_ms, kind=kind, args=args))  # type: ignore[arg-type]
        self.write()

    def close(self, ended_at_ms: int) -> None:
        self.recording.ended_at_ms = ended_at_ms
        self.write()

    def write(self) -> None:
        with self._lock:
            data = orjson.dumps(self.recording.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_bytes(data + b"\n")
            os.replace(tmp, self.path)
