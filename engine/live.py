"""The live engine host: one engine bound to one data directory, running on the wall clock.

`ggen console` and `ggen watch` both run a :class:`LiveEngine`. It takes an exclusive lock on the
data directory (a second engine refuses to start and names the process holding it), writes every
receipt-worthy event to the signed ledger and every notification to the outbox in the data
directory, and steps the engine in a background thread, catching up tick by tick so that a sped-up
clock loses no tick. A crash of the engine thread is kept in ``crash`` for the face to show.
"""
from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from engine.clock import WallClock
from engine.core import Engine, random_id
from engine.datadir import DataDir
from engine.escalation import Outbox
from engine.policy.bundle import Policy, load_policy


class DataDirLocked(RuntimeError):
    """Another live engine already runs on this data directory."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"another engine already runs on {path.parent} ({holder}); stop it first or use another --data-dir")


class DataDirLock:
    """An exclusive, process-wide lock file (flock) that records who holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, description: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise DataDirLocked(self.path, read_lock_holder(self.path)) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} {description}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


def live_state(socket_path: Path, timeout: float = 2.0) -> str | None:
    """The running engine's changing state (speed, pause, kill switch, dry-run) asked over its
    control socket, as one phrase; None when nothing answers."""
    from engine.control.client import ControlClient, ControlError, NoEngine

    try:
        st = ControlClient(socket_path, timeout).call("engine.status", timeout=timeout)
    except (NoEngine, ControlError, OSError):
        return None
    return describe_state(st)


def describe_state(st: dict[str, Any]) -> str:
    """``speed 5x, kill switch off, dry-run off`` from an ``engine.status`` answer."""
    speed = st.get("speed")
    parts = [f"speed {speed:g}x" if isinstance(speed, (int, float)) else "wall clock"]
    if st.get("paused"):
        parts.append("PAUSED")
    parts.append("kill switch ON" if st.get("kill_switch") else "kill switch off")
    parts.append("dry-run ON" if st.get("dry_run") else "dry-run off")
    return ", ".join(parts)


def read_lock_holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "unknown process"
    return text or "unknown process"


class LiveEngine:
    """An engine on the wall clock, with its ledger, outbox and lock in one data directory."""

    def __init__(
        self,
        data_dir: DataDir,
        *,
        seed: int = 1,
        speed: float = 1.0,
        policy: Policy | None = None,
        dry_run: bool = False,
        kill_switch: bool = False,
        receipts: bool = True,
        description: str = "ggen engine",
        engine_factory: Callable[..., Engine] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.policy = policy or load_policy(snapshot=data_dir.policy_snapshot_path)
        self.clock = WallClock(speed=speed)
        self.lock = DataDirLock(data_dir.lock_path)
        self.description = description
        self.receipts_enabled = receipts
        self.ledger: Any = None
        self.sink: Any = None
        self.outbox = Outbox(data_dir.outbox_path)
        factory = engine_factory or Engine
        self.engine = factory(
            self.policy,
            clock=self.clock,
            seed=seed,
            outbox=self.outbox,
            ids=random_id,
            dry_run=dry_run,
            kill_switch=kill_switch,
        )
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.crash: BaseException | None = None
        self.crash_text: str | None = None
        self.on_tick: list[Callable[[Engine], None]] = []
        self.on_crash: list[Callable[[BaseException], None]] = []
        self.services: list[Any] = []  # things with start()/stop() run alongside (control socket, delivery)
        self.receipt_errors: list[str] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "LiveEngine":
        self.data_dir.ensure()
        from engine.clock import iso_utc

        # The lock file says only what stays true while the engine runs (who, pid, since when);
        # its speed, kill switch and dry-run change, so whoever needs them asks the engine.
        try:
            self.lock.acquire(f"{self.description}, started {iso_utc(self.clock.now_ms())[:19]}Z")
        except DataDirLocked as exc:
            state = live_state(self.data_dir.control_socket_path)
            if state:
                exc.holder = f"{exc.holder}; now {state}"
                exc.args = (f"another engine already runs on {exc.path.parent} ({exc.holder}); stop it first or use another --data-dir",)
            raise
        try:
            if self.receipts_enabled:
                self._open_ledger()
            for svc in self.services:
                svc.start()
        except BaseException:
            self.lock.release()
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ggen-engine", daemon=True)
        self._thread.start()
        return self

    def _open_ledger(self) -> None:
        from engine.receipts import KeyStore, Ledger, ReceiptSink

        keys = KeyStore.open_or_init(self.data_dir.keys_dir, now_ms=self.clock.now_ms())
        self.ledger = Ledger.open(self.data_dir.ledger_path, keys)
        self.sink = ReceiptSink(self.ledger, keys, self.policy.policy_hashes, self.clock, record_clock=WallClock())

        def write(event) -> None:
            try:
                self.sink(event)
            except Exception as exc:  # a ledger problem must be visible, never silent, never fatal
                msg = f"receipt for {event.kind} of {event.incident_id} not written: {type(exc).__name__}: {exc}"
                self.receipt_errors.append(msg)
                self.engine._notice("receipt.error", msg)

        self.engine.subscribe(write)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the engine thread, then the services, the ledger and the lock. Loses no event:
        every event was written synchronously when it happened."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
            try:
                self.engine.release_open_incidents(f"the engine stopped ({self.description.removeprefix('ggen ')}); nothing watches this incident now")
            except Exception as exc:  # shown, never fatal to stopping
                self.receipt_errors.append(f"open incidents not marked unwatched: {type(exc).__name__}: {exc}")
        for svc in reversed(self.services):
            try:
                svc.stop()
            except Exception:
                pass
        if self.ledger is not None:
            try:
                self.ledger.close()
            finally:
                self.ledger = None
        self.lock.release()

    def __enter__(self) -> "LiveEngine":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ control
    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)

    def pause(self) -> None:
        self.clock.pause()

    def resume(self) -> None:
        self.clock.resume()

    @property
    def paused(self) -> bool:
        return self.clock.paused

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        eng = self.engine
        try:
            while not self._stop.is_set():
                if self.clock.paused:
                    self._stop.wait(0.05)
                    continue
                target = self.clock.now_ms()
                ran = eng.advance_to(target)
                if ran:
                    for fn in list(self.on_tick):
                        fn(eng)
                next_tick = eng.now_ms + eng.tick_ms
                wait_real = (next_tick - self.clock.now_ms()) / 1000.0 / self.clock.speed
                if wait_real > 0:
                    self._stop.wait(min(wait_real, 0.25))
        except BaseException as exc:  # shown by the face, never a traceback on a broken terminal
            self.crash = exc
            self.crash_text = "".join(traceback.format_exception(exc))
            for fn in list(self.on_crash):
                try:
                    fn(exc)
                except Exception:
                    pass


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass (for tests of live engines)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
