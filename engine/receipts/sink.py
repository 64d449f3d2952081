"""The receipt sink: what the engine calls with each :class:`IncidentEvent`.

Events whose kind is a receipt kind become signed receipts in the ledger (one transaction per
call, or per :meth:`ReceiptSink.append_events` batch). The detection receipt's id is the
incident id, so follow-ups carry ``incident_id`` = the detection receipt's id, and each
follow-up names the previous receipt of its incident as its parent (resolved by the ledger
inside the append transaction, so it survives restarts). :meth:`ReceiptSink.append_receipt`
writes receipts that are not about an incident (``key.rotated``, ``certificate.issued``).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from engine.clock import Clock, WallClock
from engine.events import DETECTED, RECEIPT_KINDS, IncidentEvent, canonical_kind

from .keys import SignerSource
from .ledger import Ledger, ReceiptDraft, StoredReceipt

PolicyHashes = Callable[[str], dict[str, str]]


def _no_policy(incident_type: str) -> dict[str, str]:
    return {}


class ReceiptSink:
    """Turns engine events into signed receipts. Usable directly as an event listener."""

    def __init__(
        self,
        ledger: Ledger,
        signer: SignerSource,
        policy_hashes: PolicyHashes = _no_policy,
        clock: Clock | None = None,
        record_clock: Clock | None = None,
    ) -> None:
        """``clock`` is the engine's (what observed_at defaults to); ``record_clock``, when given,
        stamps recorded_at, "when it was written": a live engine passes the real wall clock, so
        an engine sped up to 60x still records real times and the ledger's recorded_at never
        runs ahead of the world or back between sessions."""
        self.ledger = ledger
        self.signer = signer
        self.policy_hashes = policy_hashes
        self.clock: Clock = clock or WallClock()
        self.record_clock = record_clock

    def __call__(self, event: IncidentEvent) -> StoredReceipt | None:
        """Append the receipt for one event (None when the event's kind is not a receipt kind)."""
        written = self.append_events([event])
        return written[0] if written else None

    @staticmethod
    def receipt_kind(kind: str) -> str | None:
        """The canonical receipt kind of an event kind, or None if it yields no receipt."""
        if kind in RECEIPT_KINDS:
            return kind
        try:
            canon = canonical_kind(kind)
        except ValueError:
            return None
        return canon if canon in RECEIPT_KINDS else None

    def draft_for(self, event: IncidentEvent) -> ReceiptDraft | None:
        """The receipt draft of an event (None when its kind is not a receipt kind)."""
        kind = self.receipt_kind(event.kind)
        if kind is None:
            return None
        data = dict(event.data)
        actions = data.pop("actions", [])
        return ReceiptDraft(
            kind=kind,
            receipt_id=event.incident_id if kind == DETECTED else None,
            incident_id=event.incident_id,
            incident_type=event.incident_type,
            severity=event.severity,
            service=event.service,
            region=event.region,
            source_signal=event.source_signal,
            summary=event.summary,
            actor=event.actor,
            observed_at_ms=int(event.observed_at_ms),
            recorded_at_ms=self.record_clock.now_ms() if self.record_clock is not None else int(event.recorded_at_ms),
            policy=dict(self.policy_hashes(event.incident_type)),
            evidence=data,
            actions=list(actions),
            parents=None,  # the previous receipt of the incident, resolved in the transaction
        )

    def append_events(self, events: Iterable[IncidentEvent]) -> list[StoredReceipt]:
        """Append one receipt per receipt-kind event, all in one transaction."""
        drafts = [d for d in (self.draft_for(e) for e in events) if d is not None]
        return self.ledger.append(drafts, self.signer)

    def append_receipt(
        self,
        kind: str,
        incident_id: str | None = None,
        *,
        evidence: dict[str, Any] | None = None,
        actor: str = "engine",
        actions: list[Any] | None = None,
        incident_type: str | None = None,
        severity: str | None = None,
        service: str | None = None,
        region: str | None = None,
        source_signal: str | None = None,
        summary: str = "",
        observed_at_ms: int | None = None,
        recorded_at_ms: int | None = None,
        policy: dict[str, str] | None = None,
        receipt_id: str | None = None,
        parents: list[dict[str, str]] | None = None,
    ) -> StoredReceipt:
        """Append one receipt of any kind (incident or not), e.g. ``key.rotated`` or
        ``certificate.issued``; times default to the sink's clock."""
        now = self.clock.now_ms()
        written = self.record_clock.now_ms() if self.record_clock is not None else now
        if policy is None:
            policy = dict(self.policy_hashes(incident_type)) if incident_type else {}
        draft = ReceiptDraft(
            kind=kind,
            receipt_id=receipt_id,
            incident_id=incident_id,
            incident_type=incident_type,
            severity=severity,
            service=service,
            region=region,
            source_signal=source_signal,
            summary=summary,
            actor=actor,
            observed_at_ms=now if observed_at_ms is None else int(observed_at_ms),
            recorded_at_ms=written if recorded_at_ms is None else int(recorded_at_ms),
            policy=policy,
            evidence=dict(evidence or {}),
            actions=list(actions or []),
            parents=parents if parents is not None else (None if incident_id is not None else []),
        )
        return self.ledger.append([draft], self.signer)[0]
