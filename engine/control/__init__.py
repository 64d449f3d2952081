"""The live engine's control channel: a Unix domain socket in the data directory.

``ggen console`` and ``ggen watch`` run the engine; every other command that needs it (the
runbooks' diagnose and mitigate commands, ``ggen mitigation trigger``, ``ggen engine``, ``ggen
chaos``) sends one JSON request per line to ``DataDir.control_socket_path`` and reads one JSON
response (see :mod:`engine.control.protocol`). Commands that only read history (the ledger, the
analyzer database) never need it.

A face that runs a :class:`~engine.live.LiveEngine` calls :func:`attach_control` before
``start()``; the server then starts and stops with the engine (it is one of ``live.services``).
"""
from __future__ import annotations

from typing import Any

from engine.control.client import ControlClient, ControlError, NoEngine

__all__ = ["ControlClient", "ControlError", "NoEngine", "ControlService", "attach_control"]


class ControlService:
    """What :func:`attach_control` adds to a live engine: history sampling, the operator log,
    the operations and the socket server, started and stopped together."""

    def __init__(self, live: Any) -> None:
        from engine.control.history import MetricsHistory
        from engine.control.operations import Operations
        from engine.control.records import OperatorLog
        from engine.control.server import ControlServer

        self.live = live
        eng = live.engine
        self.history = MetricsHistory(tick_ms=eng.tick_ms)
        self.oplog = OperatorLog(eng)
        self.operations = Operations(eng, history=self.history, operator_log=self.oplog, live=live)
        self.server = ControlServer(live.data_dir.control_socket_path, self.operations.handle)

        def sample(engine: Any) -> None:
            with engine.lock:
                self.history.record(engine)

        self._sample = sample
        live.on_tick.append(sample)

    def start(self) -> None:
        # The ledger is open by now (LiveEngine opens it before starting its services).
        sink = getattr(self.live, "sink", None)
        self.oplog.sink = sink.append_receipt if sink is not None else None
        with self.live.engine.lock:
            self.history.record(self.live.engine)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.oplog.sink = None


def attach_control(live: Any) -> ControlService:
    """Serve the control socket for ``live`` (call before ``live.start()``)."""
    svc = ControlService(live)
    live.services.append(svc)
    return svc
