"""Notification delivery: the outbox's notifications sent through webhooks, commands and the
console, with retries, a record per attempt, and a one-step escalation when delivery fails.

A live engine gets it with :func:`attach_delivery`; the console reads ``service.feed`` (the
console channel), ``service.records`` / ``service.failures`` and subscribes with
``service.subscribe``.
"""
from __future__ import annotations

from typing import Any

from engine.delivery.config import DeliveryConfig, load_delivery_config
from engine.delivery.service import DeliveryService, read_records, records_path

__all__ = ["DeliveryConfig", "DeliveryService", "attach_delivery", "load_delivery_config", "read_records", "records_path"]


def attach_delivery(live: Any, config: DeliveryConfig | None = None) -> DeliveryService:
    """Build the delivery service of a ``LiveEngine`` from ``DATA_DIR/config.toml`` ``[delivery]``
    and add it to ``live.services`` (call before ``live.start()``). Raises PolicyError (file and
    field named) when the section is invalid."""
    dd = live.data_dir
    cfg = config if config is not None else load_delivery_config(dd.config_path)
    svc = DeliveryService(live.outbox, cfg, records=records_path(dd.root), engine=live.engine, clock=live.clock)
    live.services.append(svc)
    return svc
