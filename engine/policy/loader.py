"""Load a data file into a pydantic model, with errors that name the file and the field.

Every tunable number lives in a TOML or JSON file under ``runbooks/``; loaders here are the only
way in, so a typo in a runbook is reported as ``runbooks/incidents/latency_spike.toml: field
detection.tiers.0.p99_ms: Input should be a valid integer`` and never as a traceback.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.policy.common import PolicyError, file_sha256

__all__ = ["PolicyError", "StrictModel", "file_sha256", "load_model", "read_data_file", "validate"]

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for policy models: unknown keys are errors (a misspelt key must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_data_file(path: Path, syntax: str | None = None) -> dict[str, Any]:
    """Parse a .toml or .json file into a dict, raising PolicyError on any problem. ``syntax``
    ("toml" or "json") reads a file whatever its name says (a status-page draft named draft.md)."""
    syntax = syntax or path.suffix.lstrip(".")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(path, None, "file not found") from None
    except OSError as exc:
        raise PolicyError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        if syntax == "toml":
            data = tomllib.loads(raw.decode("utf-8"))
        elif syntax == "json":
            data = json.loads(raw)
        else:
            raise PolicyError(path, None, f"unsupported data file type {path.suffix!r} (use .toml or .json)")
    except UnicodeDecodeError as exc:
        raise PolicyError(path, None, f"not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(path, None, f"invalid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PolicyError(path, None, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise PolicyError(path, None, "top level must be a table/object")
    return data


def validate(path: Path | str, data: Any, model: type[M]) -> M:
    """Validate already-parsed data against ``model``; the first error names its field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or None
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise PolicyError(path, loc, err["msg"] + more) from None


def load_model(path: Path, model: type[M]) -> M:
    """Read ``path`` (.toml or .json) and validate it as ``model``."""
    return validate(path, read_data_file(path), model)
