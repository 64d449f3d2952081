"""Actuators for real systems: a command per action, or a webhook, behind one router.

Every action the engine takes (runbook steps, people's manual actions) goes through the safety
governor first, then to :meth:`ActuatorRouter.apply`, which hands it to the actuator that
``[actuators] routes`` names for it. Real actuators stay in dry-run until their table says
``enabled = true``. Each returns a clean :class:`~engine.mitigate.actuator.ActionResult` (never an
exception); its ``outcome`` (exit code, HTTP status, escaped output) goes into the receipt, and a
failure escalates the incident.
"""
from __future__ import annotations

from typing import Any

from engine.actuators.command import CommandActuator
from engine.actuators.webhook import WebhookActuator
from engine.mitigate.actuator import Action, ActionResult

__all__ = ["ActuatorRouter", "CommandActuator", "WebhookActuator", "build_router"]


class ActuatorRouter:
    """Sends each action to the actuator its route names (``"*"``: every action not listed)."""

    def __init__(self, actuators: dict[str, Any], routes: dict[str, str], *, fallback: Any = None) -> None:
        self.actuators = dict(actuators)
        self.routes = dict(routes)
        self.fallback = fallback  # the simulator actuator, for routes that say "sim"

    def target_for(self, action: str) -> str | None:
        return self.routes.get(action) or self.routes.get("*")

    @property
    def any_enabled(self) -> bool:
        return any(getattr(a, "enabled", False) for a in self.actuators.values())

    def apply(self, action: Action, now_ms: int) -> ActionResult:
        name = self.target_for(action.name)
        if name is None or name == "none":
            why = "no actuator is configured for it" if name is None else "its route says none"
            return ActionResult(False, f"{action.name} cannot be carried out here: {why} (see [actuators] routes in config.toml)", outcome={"actuator": None, "routed": False})
        if name == "sim":
            if self.fallback is None:
                return ActionResult(False, f"{action.name}: route 'sim' needs the simulator", outcome={"actuator": "sim", "routed": False})
            return self.fallback.apply(action, now_ms)
        try:
            return self.actuators[name].apply(action, now_ms)
        except Exception as exc:  # an actuator bug must escalate, never take the engine down
            return ActionResult(False, f"actuator {name} error: {type(exc).__name__}: {exc}", outcome={"actuator": name, "error": type(exc).__name__})

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for name, a in self.actuators.items():
            out.append({"name": name, "type": a.type, "enabled": a.enabled, "actions": sorted(k for k, v in self.routes.items() if v == name)})
        return out


def build_router(section: Any, *, fallback: Any = None) -> ActuatorRouter:
    """The router for an ``[actuators]`` section (engine.config.ActuatorsSection)."""
    built: dict[str, Any] = {}
    for name, cfg in section.defined.items():
        if cfg.type == "command":
            built[name] = CommandActuator(name, cfg.command, timeout_ms=cfg.timeout_ms, env=cfg.env, cwd=cfg.cwd, enabled=cfg.enabled, max_output_bytes=cfg.max_output_bytes)
        else:
            built[name] = WebhookActuator(name, cfg.url, timeout_ms=cfg.timeout_ms, retries=cfg.retries, backoff_ms=cfg.backoff_ms, headers=cfg.headers, enabled=cfg.enabled, max_response_bytes=cfg.max_response_bytes)
    return ActuatorRouter(built, section.routes, fallback=fallback)
