"""What a real actuator sends (the action as JSON) and how it reports back (escaped, capped text).

The document is the same for every actuator, on a command's stdin or in a webhook's body:

    {"schema": "ggen.action/1", "actuator": "scale-script", "at": "2026-01-01T00:00:00.000Z",
     "at_ms": 1767225600000, "action": {"name": "scale_concurrency", "target": "acct-1001",
     "params": {}, "regions": ["us-central1"], "actor": "runbook:queue_backlog_overflow@1",
     "incident_id": "urn:uuid:...", "reason": "..."}}

The answer (a command's stdout, a webhook's response body) may be empty (success is then the exit
status or the HTTP status) or a JSON object ``{"ok": bool, "detail": str, "changes": {...},
"deferred": bool, "exhausted": bool}``. Anything else is garbage: the action failed.
"""
from __future__ import annotations

import json
from typing import Any

from engine.clock import iso_utc
from engine.mitigate.actuator import Action, ActionResult

SCHEMA = "ggen.action/1"
OUTPUT_CAP_CHARS = 2000


def action_document(action: Action, now_ms: int, actuator: str) -> dict[str, Any]:
    """The JSON document describing one action."""
    return {
        "schema": SCHEMA,
        "actuator": actuator,
        "at": iso_utc(now_ms),
        "at_ms": now_ms,
        "action": {
            "name": action.name,
            "target": action.target,
            "params": dict(action.params),
            "regions": list(action.regions),
            "actor": action.actor,
            "incident_id": action.incident_id,
            "reason": action.reason,
        },
    }


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, default=str).encode()


def escape_output(raw: bytes, cap: int = OUTPUT_CAP_CHARS) -> tuple[str, bool]:
    """Program or server output as safe text for a receipt and a terminal: invalid UTF-8 replaced,
    control and escape characters shown as visible escapes, at most ``cap`` characters.
    Returns (text, truncated)."""
    text = raw.decode("utf-8", errors="replace")
    out: list[str] = []
    n = 0
    for ch in text:
        o = ord(ch)
        if ch in "\n\t" or (o >= 32 and o != 127 and not (0x80 <= o < 0xA0)):
            piece = ch
        else:
            piece = f"\\x{o:02x}" if o < 256 else f"\\u{o:04x}"
        if n + len(piece) > cap:
            return "".join(out), True
        out.append(piece)
        n += len(piece)
    return "".join(out), False


def first_line(text: str, limit: int = 200) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line[:limit] + ("..." if len(line) > limit else "")


def read_answer(raw: bytes, *, what: str) -> tuple[dict[str, Any] | None, str | None]:
    """Parse an actuator's answer. Returns (answer object or None when empty, error or None)."""
    if not raw.strip():
        return None, None
    try:
        obj = json.loads(raw)
    except ValueError:
        shown, _ = escape_output(raw[:120], 120)
        return None, f"{what} is not JSON: {first_line(shown, 120)!r}"
    if not isinstance(obj, dict):
        return None, f"{what} is JSON but not an object"
    if "ok" in obj and not isinstance(obj["ok"], bool):
        return None, f"{what}: field 'ok' must be true or false"
    if "changes" in obj and not isinstance(obj["changes"], dict):
        return None, f"{what}: field 'changes' must be an object"
    return obj, None


def result_from_answer(answer: dict[str, Any] | None, default_detail: str, outcome: dict[str, Any]) -> ActionResult:
    """An ActionResult from a successful call's parsed answer."""
    if answer is None:
        return ActionResult(True, default_detail, {}, outcome=outcome)
    ok = answer.get("ok", True)
    detail_raw = answer.get("detail")
    detail, _ = escape_output(str(detail_raw).encode(), 500) if detail_raw is not None else (default_detail, False)
    changes = answer.get("changes") or {}
    return ActionResult(
        bool(ok),
        detail if ok else f"the actuator reports failure: {detail}",
        _plain(changes),
        exhausted=bool(answer.get("exhausted", False)) and not ok,
        deferred=bool(answer.get("deferred", False)) and not ok,
        outcome=outcome,
    )


def _plain(v: Any, depth: int = 0) -> Any:
    """JSON from elsewhere, made receipt-safe: bounded depth and size, strings escaped."""
    if depth > 5:
        return "..."
    if isinstance(v, dict):
        return {str(k)[:100]: _plain(x, depth + 1) for k, x in list(v.items())[:50]}
    if isinstance(v, list):
        return [_plain(x, depth + 1) for x in v[:50]]
    if isinstance(v, str):
        return escape_output(v.encode(), 500)[0]
    if isinstance(v, (bool, int, float)) or v is None:
        return v
    return str(v)[:200]
