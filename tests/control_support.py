"""A real ``ggen watch`` in a subprocess, and ``ggen`` commands run against it the way an on-call
engineer types them (for the runbook procedure tests)."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from engine.control.client import ControlClient
from engine.policy.bundle import load_policy

BIN = Path(sys.executable).parent / "ggen"
GGEN = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "console.cli.main"]
ACTOR = "oncall-tester"


def short_tmp() -> Path:
    """A short temporary directory (Unix socket paths are limited to ~100 bytes)."""
    return Path(tempfile.mkdtemp(prefix="ggen-ctl-", dir="/tmp"))


@dataclass
class Watch:
    """One running ``ggen watch`` and the environment its commands use."""

    data: Path
    proc: subprocess.Popen
    env: dict[str, str]
    out_path: Path
    err_path: Path
    commands: list[str] = field(default_factory=list)

    @property
    def client(self) -> ControlClient:
        return ControlClient(self.data / "engine.sock", timeout=30)

    def call(self, op: str, args: dict[str, Any] | None = None) -> Any:
        return self.client.call(op, args)

    def ggen(self, cmdline: str, *, expect: int | None = 0, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command line as the runbook prints it (``ggen ...``), placeholders already filled."""
        argv = shlex.split(cmdline)
        assert argv[0] == "ggen", cmdline
        self.commands.append(cmdline)
        p = subprocess.run(GGEN + argv[1:], env=env or self.env, capture_output=True, text=True, timeout=timeout)
        if expect is not None:
            assert p.returncode == expect, f"{cmdline!r} exited {p.returncode} (wanted {expect}):\nstdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}"
        return p

    def json(self, cmdline: str, *, expect: int | None = 0) -> Any:
        p = self.ggen(cmdline + " --json", expect=expect)
        return orjson.loads(p.stdout)

    def wait(self, pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = pred()
            if v:
                return v
            time.sleep(interval)
        v = pred()
        assert v, f"timed out after {timeout} s waiting for {what}; stderr of the engine:\n{self.err_path.read_text()[-3000:]}"
        return v

    def incident(self, itype: str, timeout: float = 20) -> dict[str, Any]:
        """Wait until an incident of ``itype`` is open; return its summary."""
        return self.wait(lambda: next((i for i in self.call("incidents.list", {}) if i["type"] == itype and i["state"] != "resolved"), None), timeout, f"a {itype} incident")

    def resolved(self, incident_id: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait(lambda: next((i for i in self.call("incidents.list", {}) if i["id"] == incident_id and i["state"] == "resolved"), None), timeout, f"incident {incident_id} to resolve")

    def events(self) -> list[dict[str, Any]]:
        """Every line ``ggen watch --json`` printed so far."""
        out = []
        for line in self.out_path.read_text().splitlines():
            if line.strip():
                out.append(orjson.loads(line))
        return out

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_watch(data: Path | None = None, *, speed: float = 200, extra: tuple[str, ...] = ("--kill-switch",), env_extra: dict[str, str] | None = None, ready_timeout: float = 20) -> Watch:
    data = data or short_tmp() / "data"
    env = dict(os.environ, GGEN_DATA_DIR=str(data), GGEN_YES="1", GGEN_ACTOR=ACTOR)
    env.pop("GGEN_ASSUME_YES", None)
    if env_extra:
        env.update(env_extra)
    data.parent.mkdir(parents=True, exist_ok=True)
    out = data.parent / "watch.out"
    err = data.parent / "watch.err"
    proc = subprocess.Popen(GGEN + ["watch", "--speed", str(speed), "--json", *extra], env=env, stdout=out.open("wb"), stderr=err.open("wb"), stdin=subprocess.DEVNULL)
    w = Watch(data, proc, env, out, err)
    end = time.monotonic() + ready_timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"ggen watch exited {proc.returncode}: {err.read_text()}")
        if (data / "engine.sock").exists() and w.client.alive():
            return w
        time.sleep(0.05)
    w.stop()
    raise AssertionError(f"ggen watch did not come up: {err.read_text()}")


def manual(incident_type: str) -> Any:
    """The runbook's [manual] procedure (diagnose, mitigate, rollback command lines)."""
    return load_policy().runbooks[incident_type].manual


def ledger_receipts(data: Path) -> list[dict[str, Any]]:
    from engine.receipts import Ledger

    led = Ledger.open(data / "ledger.sqlite", readonly=True)
    try:
        return [r.payload() for r in led.iter_receipts()]
    finally:
        led.close()
