"""The command actuator: one program run per action, the action as JSON on its stdin.

The program runs without a shell, in its own session (process group), with a small environment
(PATH, HOME, LANG, the configured variables and ``GGEN_ACTION``, ``GGEN_TARGET``,
``GGEN_INCIDENT_ID``, ``GGEN_ACTOR``). It succeeds by exiting 0 with empty output or with a JSON
object on stdout (see :mod:`engine.actuators.document`). A non-zero exit, a signal, output that is
not a JSON object, or running past ``timeout_ms`` (the whole process group is then killed) is a
failure whose reason and escaped, capped output go into the mitigation receipt. It never raises.
"""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from typing import Any

from engine.actuators.document import action_document, encode, escape_output, first_line, read_answer, result_from_answer
from engine.mitigate.actuator import Action, ActionResult

_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


class CommandActuator:
    """Runs ``command`` for each action routed to it."""

    type = "command"

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        timeout_ms: int = 10_000,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        enabled: bool = False,
        max_output_bytes: int = 64 * 1024,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.timeout_ms = timeout_ms
        self.env = dict(env or {})
        self.cwd = cwd
        self.enabled = enabled
        self.max_output_bytes = max_output_bytes
        self.calls = 0

    def apply(self, action: Action, now_ms: int) -> ActionResult:
        base: dict[str, Any] = {"actuator": self.name, "type": self.type, "program": self.command[0]}
        if not self.enabled:
            return ActionResult(
                False,
                f"dry-run: actuator {self.name} is not enabled (set enabled = true in [actuators.{self.name}]); {action.name} on {action.target} was not run",
                outcome=dict(base, dry_run=True),
            )
        self.calls += 1
        doc = encode(action_document(action, now_ms, self.name))
        env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
        env.update(self.env)
        env.update(GGEN_ACTION=action.name, GGEN_TARGET=action.target, GGEN_INCIDENT_ID=action.incident_id or "", GGEN_ACTOR=action.actor)
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=env, cwd=self.cwd, start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            return ActionResult(False, f"cannot run {self.command[0]}: {exc.strerror or exc}", outcome=dict(base, exit_code=None, error=str(exc.strerror or exc)))
        out, err, timed_out = self._talk(proc, doc, started)
        duration_ms = int((time.monotonic() - started) * 1000)
        stdout, out_cut = escape_output(out[: self.max_output_bytes])
        stderr, err_cut = escape_output(err[: self.max_output_bytes])
        out_cut = out_cut or len(out) > self.max_output_bytes
        err_cut = err_cut or len(err) > self.max_output_bytes
        rc = proc.returncode
        outcome = dict(
            base, exit_code=rc if rc is not None and rc >= 0 else None, signal=signal.Signals(-rc).name if rc is not None and rc < 0 else None,
            timed_out=timed_out, duration_ms=duration_ms, stdout=stdout, stdout_truncated=out_cut, stderr=stderr, stderr_truncated=err_cut,
        )
        if timed_out:
            return ActionResult(False, f"{self.command[0]} timed out after {self.timeout_ms} ms and was killed", outcome=outcome)
        if rc is None or rc != 0:
            why = f"exit status {rc}" if rc is not None and rc > 0 else f"killed by {outcome['signal']}"
            said = first_line(stderr) or first_line(stdout)
            return ActionResult(False, f"{self.command[0]} failed ({why})" + (f": {said}" if said else ""), outcome=outcome)
        if len(out) > self.max_output_bytes:
            answer, problem = None, f"{self.command[0]}'s output is longer than {self.max_output_bytes} bytes"
        else:
            answer, problem = read_answer(out, what=f"{self.command[0]}'s output")
        if problem is not None:
            return ActionResult(False, problem, outcome=outcome)
        return result_from_answer(answer, f"{self.command[0]} ran {action.name} on {action.target} (exit 0)", outcome)

    def _talk(self, proc: subprocess.Popen, doc: bytes, started: float) -> tuple[bytes, bytes, bool]:
        """Write stdin, read stdout/stderr (keeping at most max_output_bytes of each) until both
        close or the deadline passes; then kill the group. Returns (stdout, stderr, timed_out)."""
        deadline = started + self.timeout_ms / 1000.0
        try:
            assert proc.stdin is not None
            proc.stdin.write(doc)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # a program that does not read its stdin is allowed
        bufs: dict[int, bytearray] = {}
        assert proc.stdout is not None and proc.stderr is not None
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        sel = selectors.DefaultSelector()
        for f in (proc.stdout, proc.stderr):
            assert f is not None
            os.set_blocking(f.fileno(), False)
            sel.register(f, selectors.EVENT_READ)
            bufs[f.fileno()] = bytearray()
        timed_out = False
        open_pipes = 2
        try:
            while open_pipes:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                for key, _ in sel.select(timeout=min(left, 0.5)):
                    try:
                        chunk = os.read(key.fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(key.fileobj)
                        open_pipes -= 1
                        continue
                    buf = bufs[key.fd]
                    if len(buf) <= self.max_output_bytes:
                        buf.extend(chunk[: self.max_output_bytes + 1 - len(buf)])
            if not timed_out:
                left = deadline - time.monotonic()
                try:
                    proc.wait(timeout=max(0.0, left))
                except subprocess.TimeoutExpired:
                    timed_out = True
        finally:
            sel.close()
            if timed_out or proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
            for f in (proc.stdout, proc.stderr):
                if f is not None:
                    f.close()
        return bytes(bufs[out_fd]), bytes(bufs[err_fd]), timed_out
