"""Delivery channels: a webhook (HTTP POST), a command (a program fed on stdin), the console.

Each channel's ``send`` makes one attempt and reports it as an :class:`Attempt`; retrying,
recording and escalating are the service's job. Nothing here raises on a network or program
failure: every outcome becomes an Attempt with a readable error.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from engine.text import escape_controls
from engine.delivery.config import CommandChannel, ConsoleChannel, WebhookChannel

OUTPUT_LIMIT = 2_048  # bytes of a response body or program output kept in a record
RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
SEV_EMOJI = {"Sev1": ":red_circle:", "Sev2": ":large_orange_circle:", "Sev3": ":large_yellow_circle:", "Sev4": ":white_circle:"}


@dataclass
class Attempt:
    """The outcome of one delivery attempt."""

    ok: bool
    retryable: bool = True
    status: int | None = None  # HTTP status or exit code
    error: str = ""
    output: str = ""
    duration_ms: int = 0
    retry_after_ms: int | None = None


def printable(data: bytes | str, limit: int = OUTPUT_LIMIT) -> str:
    """Bytes from a server or a program as safe text: decoded leniently, control characters
    shown as escapes, cut at ``limit`` bytes."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    cut = len(data) > limit
    text = escape_controls(data[:limit].decode("utf-8", "replace"))
    return text + (f" ... ({len(data)} bytes in all)" if cut else "")


def json_payload(note: dict[str, Any], contact: dict[str, Any] | None, channel: str, attempt: int) -> dict[str, Any]:
    """The plain JSON body: the notification as the outbox holds it, who it is for, which attempt."""
    return {"schema": "ggen.notification/1", "notification": note, "contact": contact, "delivery": {"channel": channel, "attempt": attempt}}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(note: dict[str, Any], contact: dict[str, Any] | None) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook message (``text`` plus one mrkdwn section)."""
    who = note.get("recipient") or ""
    if contact and contact.get("handle"):
        who = f"{who} ({contact['handle']})"
    head = f"{SEV_EMOJI.get(note.get('severity') or '', '')} *{note.get('severity')}* {note.get('kind')} for {who} ({note.get('recipient_role')})".strip()
    body = f"{note.get('text')}\nincident `{note.get('incident_id')}` at {note.get('at')}"
    fallback = f"{note.get('severity')} {note.get('kind')} for {who}: {note.get('text')}"
    return {
        "text": _slack_escape(fallback),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(head) + "\n" + _slack_escape(body)}}],
    }


class Webhook:
    """POST to a URL; 2xx is delivered, 408/425/429/5xx and network errors are retried."""

    def __init__(self, spec: WebhookChannel) -> None:
        self.spec = spec
        handlers: list[Any] = [urllib.request.ProxyHandler({"http": spec.proxy, "https": spec.proxy} if spec.proxy else {})]
        self._opener = urllib.request.build_opener(*handlers)

    def send(self, note: dict[str, Any], contact: dict[str, Any] | None, attempt: int) -> Attempt:
        payload = slack_payload(note, contact) if self.spec.format == "slack" else json_payload(note, contact, self.spec.name, attempt)
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json", "User-Agent": "ggen-delivery/1", "X-Ggen-Notification-Id": str(note.get("id")), "X-Ggen-Attempt": str(attempt)}
        headers.update(self.spec.headers)
        req = urllib.request.Request(self.spec.url, data=body, method="POST", headers=headers)
        t0 = time.monotonic()
        timeout = self.spec.timeout_ms / 1000
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                data = resp.read(OUTPUT_LIMIT + 1)
                return Attempt(True, status=resp.status, output=printable(data), duration_ms=_since(t0))
        except urllib.error.HTTPError as exc:
            try:
                data = exc.read(OUTPUT_LIMIT + 1)
            except Exception:
                data = b""
            retry_after = _retry_after_ms(exc.headers.get("Retry-After") if exc.headers else None)
            return Attempt(False, retryable=exc.code in RETRYABLE_HTTP, status=exc.code, error=f"HTTP {exc.code} {exc.reason}", output=printable(data), duration_ms=_since(t0), retry_after_ms=retry_after)
        except (TimeoutError, socket.timeout):
            return Attempt(False, error=f"no answer within {self.spec.timeout_ms} ms (timeout)", duration_ms=_since(t0))
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                return Attempt(False, error=f"no answer within {self.spec.timeout_ms} ms (timeout)", duration_ms=_since(t0))
            return Attempt(False, error=f"cannot reach {self.spec.url}: {reason}", duration_ms=_since(t0))
        except (OSError, ValueError) as exc:  # connection reset mid-answer, malformed response
            return Attempt(False, error=f"{type(exc).__name__}: {exc}", duration_ms=_since(t0))
        except Exception as exc:  # http.client errors (RemoteDisconnected, BadStatusLine, ...)
            return Attempt(False, error=f"{type(exc).__name__}: {exc}", duration_ms=_since(t0))


class Command:
    """Run a program with the notification JSON on stdin; exit 0 is delivered.

    The program runs in its own process group with no shell; on timeout the whole group is
    killed. Its output is kept (trimmed, escaped) in the record, whatever bytes it writes.
    """

    def __init__(self, spec: CommandChannel) -> None:
        self.spec = spec

    def send(self, note: dict[str, Any], contact: dict[str, Any] | None, attempt: int) -> Attempt:
        body = orjson.dumps(json_payload(note, contact, self.spec.name, attempt))
        env = dict(os.environ)
        env.update({
            "GGEN_NOTIFICATION_ID": str(note.get("id")),
            "GGEN_INCIDENT_ID": str(note.get("incident_id")),
            "GGEN_SEVERITY": str(note.get("severity")),
            "GGEN_RECIPIENT": str(note.get("recipient")),
            "GGEN_RECIPIENT_ROLE": str(note.get("recipient_role")),
            "GGEN_CHANNEL": str(note.get("channel")),
            "GGEN_ATTEMPT": str(attempt),
        })
        env.update(self.spec.env)
        t0 = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(self.spec.command, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env, start_new_session=True, close_fds=True)
            except FileNotFoundError:
                return Attempt(False, retryable=False, error=f"program not found: {self.spec.command[0]}", duration_ms=_since(t0))
            except PermissionError:
                return Attempt(False, retryable=False, error=f"program not executable: {self.spec.command[0]}", duration_ms=_since(t0))
            except OSError as exc:
                return Attempt(False, retryable=False, error=f"cannot run {self.spec.command[0]}: {exc}", duration_ms=_since(t0))
            timed_out = False
            try:
                proc.communicate(body, timeout=self.spec.timeout_ms / 1000)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                proc.wait()
            except BrokenPipeError:  # the program exited without reading its input
                proc.wait()
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(OUTPUT_LIMIT + 1), err.read(OUTPUT_LIMIT + 1)
        text = printable(stdout) + (("\n[stderr] " + printable(stderr)) if stderr else "")
        if timed_out:
            return Attempt(False, error=f"still running after {self.spec.timeout_ms} ms: killed", output=text, duration_ms=_since(t0))
        code = proc.returncode
        if code == 0:
            return Attempt(True, status=0, output=text, duration_ms=_since(t0))
        why = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        return Attempt(False, status=code, error=f"{self.spec.command[0]}: {why}", output=text, duration_ms=_since(t0))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


@dataclass
class ConsoleFeed:
    """Notifications for the console: the latest ones, and listeners called as they arrive."""

    items: deque = field(default_factory=lambda: deque(maxlen=500))
    listeners: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.listeners.append(fn)


class Console:
    """Hands the notification to the console feed (in memory, never fails for lack of a network)."""

    def __init__(self, spec: ConsoleChannel, feed: ConsoleFeed) -> None:
        self.spec = spec
        self.feed = feed

    def send(self, note: dict[str, Any], contact: dict[str, Any] | None, attempt: int) -> Attempt:
        item = dict(note, contact=contact)
        with self.feed.lock:
            self.feed.items.append(item)
        errors = []
        for fn in list(self.feed.listeners):
            try:
                fn(item)
            except Exception as exc:  # a broken screen must not stop delivery elsewhere
                errors.append(f"{type(exc).__name__}: {exc}")
        return Attempt(True, output="; ".join(errors))


def make_channel(spec: Any, feed: ConsoleFeed) -> Any:
    if isinstance(spec, WebhookChannel):
        return Webhook(spec)
    if isinstance(spec, CommandChannel):
        return Command(spec)
    return Console(spec, feed)


def _since(t0: float) -> int:
    return int((time.monotonic() - t0) * 1000)


def _retry_after_ms(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return max(0, int(float(value.strip()) * 1000))
    except ValueError:
        return None
