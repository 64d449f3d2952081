"""The delivery service: takes every notification the engine writes to its outbox and delivers it
through the configured channels, beside the engine and never in its way.

The outbox listener only enqueues (the engine thread never waits on a network or a program). Each
channel has its own worker thread and queue, so a hanging webhook does not delay the console or a
command. A failed attempt is retried with exponential backoff; every attempt is a record (JSON
lines in ``DATA_DIR/delivery.jsonl``). When a notification still fails after its last attempt (or
fails in a way retrying cannot fix), the failure is recorded, announced as an engine notice, and
escalated one step: the engine pages the next role of the incident's ladder now
(:meth:`engine.core.Engine.page_next_step`). Escalation is merged per ladder step: however many
notifications of one step fail (the same page on several channels, or again later), the next step is
paged once, and the later failures are recorded as ``merged`` into that escalation. A failed
informational notification (kind ``info``, e.g. the VP's SMS at T+0) pages nobody: it is recorded
and announced as a failure only. Nothing is dropped silently: a notification still queued when the
service stops is recorded as undelivered.
"""
from __future__ import annotations

import heapq
import itertools
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from engine.clock import Clock, WallClock, iso_utc
from engine.delivery.channels import Attempt, ConsoleFeed, make_channel
from engine.delivery.config import DeliveryConfig, RetryPolicy
from engine.escalation import Notification, Outbox

DELIVERED = "delivered"
RETRY = "retry"
FAILED = "failed"
UNDELIVERED = "undelivered"  # still queued when the service stopped


def records_path(root: Path) -> Path:
    """Where a data directory keeps delivery records."""
    return Path(root) / "delivery.jsonl"


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    note: dict[str, Any] = field(compare=False)
    attempt: int = field(compare=False, default=1)


class _Worker:
    """One channel's queue and thread."""

    def __init__(self, service: "DeliveryService", spec: Any, channel: Any) -> None:
        self.service = service
        self.spec = spec
        self.channel = channel
        self.retry: RetryPolicy = spec.retry or service.config.retry
        self.heap: list[_Job] = []
        self.cond = threading.Condition()
        self.busy = False
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name=f"ggen-delivery-{spec.name}", daemon=True)

    def matches(self, n: Notification) -> bool:
        s = self.spec
        return (
            (not s.channels or n.channel in s.channels)
            and (not s.kinds or n.kind in s.kinds)
            and (not s.severities or n.severity in s.severities)
            and (not s.roles or n.recipient_role in s.roles)
        )

    def put(self, job: _Job) -> None:
        with self.cond:
            heapq.heappush(self.heap, job)
            self.cond.notify()

    @property
    def idle(self) -> bool:
        with self.cond:
            return not self.heap and not self.busy

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.stopping and (not self.heap or self.heap[0].due > time.monotonic()):
                    wait = None if not self.heap else max(0.0, self.heap[0].due - time.monotonic())
                    self.cond.wait(wait)
                if self.stopping:
                    return
                job = heapq.heappop(self.heap)
                self.busy = True
            try:
                self.service._attempt(self, job)
            except Exception as exc:  # a bug here must show as a failed delivery, not kill the worker
                self.service._record(self.spec, job.note, job.attempt, Attempt(False, retryable=False, error=f"internal error: {type(exc).__name__}: {exc}"), FAILED)
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()


class DeliveryService:
    """Delivers outbox notifications through channels. A ``LiveEngine.services`` entry."""

    def __init__(
        self,
        outbox: Outbox,
        config: DeliveryConfig,
        *,
        records: Path | None = None,
        engine: Any = None,
        roster: Any = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        keep: int = 1000,
    ) -> None:
        self.outbox = outbox
        self.config = config
        self.records_file = Path(records) if records is not None else None
        self.engine = engine
        self.roster = roster
        self.clock: Clock = clock or WallClock()
        self.rng = rng or random.Random()
        self.feed = ConsoleFeed()
        self.records: deque[dict[str, Any]] = deque(maxlen=keep)
        self.failures: deque[dict[str, Any]] = deque(maxlen=keep)
        self.record_listeners: list[Callable[[dict[str, Any]], None]] = []
        self._seq = itertools.count()
        self._file_lock = threading.Lock()
        # one escalation per (incident, ladder step of the failed notification); held while paging so
        # two channels failing at the same moment cannot both page the next step
        self._escalation_lock = threading.Lock()
        self._escalations: dict[tuple[str, Any], dict[str, Any]] = {}
        self._workers = [_Worker(self, spec, make_channel(spec, self.feed)) for spec in config.channels] if config.enabled else []
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for w in self._workers:
            w.thread.start()
        self.outbox.listeners.append(self.submit)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers; anything still queued is recorded as undelivered (never dropped)."""
        if not self._started:
            return
        try:
            self.outbox.listeners.remove(self.submit)
        except ValueError:
            pass
        for w in self._workers:
            with w.cond:
                w.stopping = True
                w.cond.notify_all()
        for w in self._workers:
            w.thread.join(timeout)
            with w.cond:
                left = list(w.heap)
                w.heap.clear()
            for job in sorted(left):
                self._record(w.spec, job.note, job.attempt, Attempt(False, error="the delivery service stopped before this attempt"), UNDELIVERED)
        self._started = False

    def subscribe(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """Be told of every delivery record (attempts, failures, escalations) as it is written."""
        self.record_listeners.append(fn)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queue is empty and no attempt is running (tests, shutdown)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(w.idle for w in self._workers):
                return True
            time.sleep(0.005)
        return all(w.idle for w in self._workers)

    @property
    def channel_names(self) -> list[str]:
        return [w.spec.name for w in self._workers]

    # -- intake (runs on the engine thread: enqueue only) -----------------------------------------
    def submit(self, n: Notification) -> None:
        """Queue one notification on every channel that takes it."""
        note = n.to_dict()
        now = time.monotonic()
        for w in self._workers:
            if w.matches(n):
                w.put(_Job(now, next(self._seq), note))

    # -- attempts (worker threads) ---------------------------------------------------------------
    def _contact(self, note: dict[str, Any]) -> dict[str, Any] | None:
        roster = self.roster if self.roster is not None else getattr(self.engine, "roster", None)
        lookup = getattr(roster, "person", None)
        if lookup is None:
            return None
        p = lookup(str(note.get("recipient")))
        return None if p is None else p.to_dict()

    def _attempt(self, w: _Worker, job: _Job) -> None:
        result = w.channel.send(job.note, self._contact(job.note), job.attempt)
        if result.ok:
            self._record(w.spec, job.note, job.attempt, result, DELIVERED)
            return
        if result.retryable and job.attempt < w.retry.attempts:
            delay = w.retry.delay_ms(job.attempt)
            if result.retry_after_ms is not None:
                delay = min(max(delay, result.retry_after_ms), max(w.retry.backoff_max_ms, delay))
            if w.retry.jitter_pct:
                delay = int(delay * (1 + self.rng.uniform(-1, 1) * w.retry.jitter_pct / 100))
            self._record(w.spec, job.note, job.attempt, result, RETRY, next_attempt_in_ms=delay)
            w.put(_Job(time.monotonic() + delay / 1000, next(self._seq), job.note, job.attempt + 1))
            return
        rec = self._record(w.spec, job.note, job.attempt, result, FAILED)
        self.failures.append(rec)
        self._escalate(w.spec, job.note, rec)

    def _escalate(self, spec: Any, note: dict[str, Any], rec: dict[str, Any]) -> None:
        why = f"{spec.name} could not deliver {note.get('kind')} to {note.get('recipient')} ({note.get('recipient_role')}) after {rec['attempt']} attempt(s): {rec['error']}"
        if self.engine is None:
            self._write({**self._base(spec, note, rec["attempt"]), "outcome": "not_escalated", "error": "no engine to escalate through", "detail": why})
            return
        if not spec.escalate_on_failure:
            self._notice(why + " (escalation off for this channel)", note)
            return
        if note.get("kind") == "info":
            # informational (nobody is waiting on it to act): a failure to show, not a reason to page
            self._notice(why + " (informational: nobody paged for it)", note)
            self._write({**self._base(spec, note, rec["attempt"]), "outcome": "not_escalated", "detail": why, "error": "informational notification: a failure is shown, nobody is paged"})
            return
        key = (str(note.get("incident_id")), note.get("step"))
        with self._escalation_lock:
            earlier = self._escalations.get(key)
            if earlier is not None:
                self._notice(why + f" (merged: step {key[1]} already escalated by notification {earlier['notification_id']})", note)
                self._write({**self._base(spec, note, rec["attempt"]), "outcome": "merged", "detail": why, "merged_into": earlier["notification_id"], "escalated_to": earlier.get("escalated_to")})
                return
            raised = False
            try:
                nxt = self.engine.page_next_step(key[0], after_step=note.get("step"), reason=why, failed_notification_id=str(note.get("id")))
            except Exception as exc:
                nxt, raised = None, True
                why += f"; escalation failed: {type(exc).__name__}: {exc}"
            if nxt is None:
                out = {**self._base(spec, note, rec["attempt"]), "outcome": "not_escalated", "detail": why, "error": "no further step to page (ladder exhausted, or incident resolved)"}
            else:
                out = {**self._base(spec, note, rec["attempt"]), "outcome": "escalated", "detail": why, "escalated_to": {"role": nxt.recipient_role, "recipient": nxt.recipient, "notification_id": nxt.id, "step": nxt.step}}
            if not raised:  # an escalation that broke is tried again by the next failure of that step
                self._escalations[key] = out
            self._write(out)

    def _notice(self, text: str, note: dict[str, Any]) -> None:
        fn = getattr(self.engine, "notice", None)
        if fn is not None:
            fn("delivery.failed", text, incident_id=note.get("incident_id"), notification_id=note.get("id"))

    # -- records --------------------------------------------------------------------------------
    def _base(self, spec: Any, note: dict[str, Any], attempt: int) -> dict[str, Any]:
        now = self.clock.now_ms()
        return {
            "at": iso_utc(now),
            "at_ms": now,
            "notification_id": note.get("id"),
            "notification_at_ms": note.get("at_ms"),
            "incident_id": note.get("incident_id"),
            "severity": note.get("severity"),
            "kind": note.get("kind"),
            "outbox_channel": note.get("channel"),
            "recipient_role": note.get("recipient_role"),
            "recipient": note.get("recipient"),
            "step": note.get("step"),
            "channel": spec.name,
            "type": spec.type,
            "attempt": attempt,
        }

    def _record(self, spec: Any, note: dict[str, Any], attempt: int, result: Attempt, outcome: str, **extra: Any) -> dict[str, Any]:
        rec = {
            **self._base(spec, note, attempt),
            "outcome": outcome,
            "status": result.status,
            "error": result.error,
            "output": result.output,
            "duration_ms": result.duration_ms,
            **extra,
        }
        self._write(rec)
        return rec

    def _write(self, rec: dict[str, Any]) -> None:
        self.records.append(rec)
        if self.records_file is not None:
            line = orjson.dumps(rec) + b"\n"
            with self._file_lock:
                self.records_file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.records_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
        for fn in list(self.record_listeners):
            try:
                fn(rec)
            except Exception:
                pass


def read_records(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Delivery records from a data directory's file (a damaged line is returned as an error row)."""
    out: list[dict[str, Any]] = []
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return out
    for i, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            out.append({"outcome": "unreadable", "error": f"{path}: line {i} is not JSON"})
    return out[-limit:] if limit else out
