"""Console figures: time to the first full frame, and frame times with a big fleet at speed.

    .venv/bin/python bench/console_bench.py [--runs 5] [--seconds 20] [--services 200] [--speed 10]
                                            [--history-ticks 1800] [--skip-startup] [--skip-frames] [--as-is]

1. Startup. `ggen console` and a minimal Textual app (one Static) are started in a pseudo-terminal
   of 120x40, the same way; each writes the wall time of its first full frame to a file (the
   console: the first frame that shows the engine's data; see GGEN_CONSOLE_FIRST_FRAME_FILE in
   console/tui/app.py). Reported: the median over --runs of (first frame - spawn), and the ratio.
2. Frames. The console runs in a pseudo-terminal of 160x50 on a generated fleet of --services
   services at --speed, with faults injected every few seconds so incidents open, escalate and
   resolve. Every screen update (layout, render and the write to the terminal) is timed, as is
   the UI work of applying each engine reading, the reading itself (a worker thread, under the
   engine lock), how late a 10 ms timer on the UI loop fires (the longest the UI was stuck), and
   every garbage collection's pause by generation.
3. History. What the control socket's metric history leaves for the garbage collector after its
   30-minute window of 200 services (tracked objects, and the time of a full collection).

Both apps run with bytecode caches (a private PYTHONPYCACHEPREFIX) unless --as-is: this working
tree sets PYTHONDONTWRITEBYTECODE, which makes every start compile the project's modules.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GGEN = Path(sys.executable).parent / "ggen"

MINIMAL_APP = """
import os, time
from textual.app import App
from textual.widgets import Static

class Minimal(App):
    def compose(self):
        yield Static("hello")

    def on_mount(self):
        self.call_after_refresh(self.first_frame)

    def first_frame(self):
        with open(os.environ["MINIMAL_FIRST_FRAME_FILE"], "w") as fh:
            fh.write(f"{time.time():.6f}\\n")

Minimal().run()
"""


def spawn_in_pty(argv: list[str], env: dict[str, str], cols: int, rows: int) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True)
    os.close(slave)

    def drain() -> None:  # the app blocks if nobody reads the terminal
        while True:
            try:
                if not os.read(master, 65536):
                    return
            except OSError:
                return

    threading.Thread(target=drain, daemon=True).start()
    return proc, master


# Python's bytecode caches: installed packages have theirs; a shell that sets
# PYTHONDONTWRITEBYTECODE (this repository's working tree does) makes the project's own modules
# compile from source on every start, which no installed ggen does. By default both apps get a
# private cache directory (PYTHONPYCACHEPREFIX), filled by an unmeasured first run.
PYCACHE: str | None = None


def bench_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, TERM="xterm-256color", **extra)
    if PYCACHE is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE
    return env


def first_frame_s(argv: list[str], env_key: str, quit_keys: bytes, extra_env: dict[str, str] | None = None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "first-frame"
        env = bench_env(**(extra_env or {}))
        env[env_key] = str(marker)
        start = time.time()
        proc, master = spawn_in_pty(argv, env, 120, 40)
        try:
            deadline = time.monotonic() + 60
            while not (marker.exists() and marker.read_text().endswith("\n")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} exited ({proc.returncode}) before its first frame")
                time.sleep(0.002)
            shown = float(marker.read_text())  # written whole: the line ends with a newline
            os.write(master, quit_keys)
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        return shown - start


def bench_startup(runs: int) -> dict[str, object]:
    """Runs alternate between the two apps so a change in machine load hits both alike. The data
    directory is created by the first run (keys, ledger, the policy snapshot), as on every start
    but the first; that first start is reported apart (after an unmeasured run that fills the
    bytecode cache)."""
    console, minimal = [], []
    with tempfile.TemporaryDirectory() as warm, tempfile.TemporaryDirectory() as data:
        first_frame_s([str(GGEN), "--data-dir", warm, "console"], "GGEN_CONSOLE_FIRST_FRAME_FILE", b"q")  # bytecode caches
        argv = [str(GGEN), "--data-dir", data, "console"]
        cold = first_frame_s(argv, "GGEN_CONSOLE_FIRST_FRAME_FILE", b"q")
        first_frame_s([sys.executable, "-c", MINIMAL_APP], "MINIMAL_FIRST_FRAME_FILE", b"\x11")  # warm caches alike
        for _ in range(runs):
            console.append(first_frame_s(argv, "GGEN_CONSOLE_FIRST_FRAME_FILE", b"q"))
            minimal.append(first_frame_s([sys.executable, "-c", MINIMAL_APP], "MINIMAL_FIRST_FRAME_FILE", b"\x11"))  # ctrl+q
    c, m = statistics.median(console), statistics.median(minimal)
    return {"console_s": c, "minimal_s": m, "ratio": c / m, "console_all": console, "minimal_all": minimal, "cold_s": cold}


# ---------------------------------------------------------------------------------------- frames
def frame_child(out: str, seconds: float, services: int, speed: float, attach: bool = True) -> None:
    """Runs inside the pseudo-terminal: the real console, instrumented."""
    from textual.screen import Screen

    import console.tui.screens.main as main_mod
    from console.tui.app import ConsoleApp
    from console.tui.session import open_live_session
    from engine.datadir import DataDir

    frames: list[float] = []
    frame_cpu: list[float] = []
    applies: list[float] = []
    reads: list[float] = []
    stalls: list[float] = []

    original_update = Screen._on_timer_update

    def timed_update(self: Screen) -> None:
        t, c = time.perf_counter(), time.thread_time()
        original_update(self)
        frames.append(time.perf_counter() - t)
        frame_cpu.append(time.thread_time() - c)

    Screen._on_timer_update = timed_update  # type: ignore[method-assign]
    original_apply = main_mod.MainScreen.on_view_refreshed

    def timed_apply(self, message) -> None:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        original_apply(self, message)
        applies.append(time.perf_counter() - t)

    main_mod.MainScreen.on_view_refreshed = timed_apply  # type: ignore[method-assign]
    original_read = main_mod.read_view

    def timed_read(*args, **kwargs):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        v = original_read(*args, **kwargs)
        reads.append(time.perf_counter() - t)
        return v

    main_mod.read_view = timed_read  # type: ignore[assignment]

    tmp = tempfile.mkdtemp(prefix="ggen-bench-")
    session = open_live_session(DataDir(Path(tmp)), speed=speed, fleet_size=services, actor="bench", attach=attach, defer_services=True)  # as `ggen console` opens it
    faults = [("cpu_saturation", "svc-0042"), ("bad_deploy", "svc-0007"), ("traffic_surge", None), ("slow_queries", None), ("dependency_outage", "svc-0150"), ("region_outage", None)]
    app = ConsoleApp(session, freeze_startup_objects=True)  # as `ggen console` runs it
    state = {"last": time.perf_counter(), "next_fault": 0, "t0": time.perf_counter()}

    big: list[tuple[float, float]] = []
    import gc

    gc_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gc_started: list[float] = [0.0]

    def on_gc(phase: str, info: dict) -> None:  # every collection, on whichever thread runs it
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses[info["generation"]].append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(on_gc)

    def tick() -> None:
        now = time.perf_counter()
        stalls.append(now - state["last"] - 0.01)
        if stalls[-1] > 0.03:
            big.append((round(now - state["t0"], 2), round(stalls[-1] * 1000, 1)))
        state["last"] = now
        elapsed = now - state["t0"]
        if state["next_fault"] < len(faults) and elapsed > 1 + 3 * state["next_fault"]:
            kind, target = faults[state["next_fault"]]
            state["next_fault"] += 1
            threading.Thread(target=session.inject, args=(kind, target), daemon=True).start()
        if elapsed > seconds:
            app.exit()

    def started() -> None:
        state["t0"] = state["last"] = time.perf_counter()
        app.set_interval(0.01, tick)

    app.call_later(started)
    t_start = time.perf_counter()
    engine_start = session.engine.now_ms
    try:
        app.run()
    finally:
        session.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.perf_counter() - t_start
    eng = session.engine
    Path(out).write_text(
        json.dumps(
            {
                "frames": frames,
                "frame_cpu": frame_cpu,
                "applies": applies,
                "reads": reads,
                "stalls": stalls[1:],
                "wall_s": wall,
                "engine_s": (eng.now_ms - engine_start) / 1000,
                "incidents": len(eng.incidents),
                "crash": session.crash_text,
                "big_stalls": big,
                "gc": {str(g): v for g, v in gc_pauses.items()},
            }
        )
    )


def bench_history(ticks: int, services: int) -> dict[str, float]:
    """What the control socket's metric history leaves for the garbage collector: objects it
    tracks and the time of a full collection after ``ticks`` ticks of ``services`` services with
    faults (errors by status code on many services), on a virtual clock."""
    import gc

    from console.tui.session import virtual_session
    from engine.control.history import MetricsHistory

    s = virtual_session(fleet_size=services, seed=1)
    h = MetricsHistory(tick_ms=s.engine.tick_ms)
    for kind, target in (("cpu_saturation", "svc-0042"), ("bad_deploy", "svc-0007"), ("dependency_outage", "svc-0150")):
        s.engine.inject(kind, target, actor="bench")
    gc.collect()
    before = len(gc.get_objects())
    t = time.perf_counter()
    for _ in range(ticks):
        s.engine.run_for(s.engine.tick_ms)
        with s.engine.lock:
            h.record(s.engine)
    run_s = time.perf_counter() - t
    gc.collect()
    tracked = len(gc.get_objects()) - before
    t = time.perf_counter()
    gc.collect()
    return {"tracked": tracked, "full_gc_ms": (time.perf_counter() - t) * 1000, "tick_ms": run_s / ticks * 1000}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def bench_frames(seconds: float, services: int, speed: float, attach: bool = True) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "frames.json"
        env = bench_env()
        argv = [sys.executable, str(Path(__file__).resolve()), "--frame-child", str(out), "--seconds", str(seconds), "--services", str(services), "--speed", str(speed)]
        if not attach:
            argv.append("--no-services")
        proc, master = spawn_in_pty(argv, env, 160, 50)
        try:
            proc.wait(timeout=seconds + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(master)
        if not out.exists():
            raise RuntimeError(f"the frame run wrote nothing (exit {proc.returncode})")
        return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--speed", type=float, default=10.0)
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--skip-frames", action="store_true")
    ap.add_argument("--history-ticks", type=int, default=1800, help="ticks of metric history for the garbage-collection figure (0: skip)")
    ap.add_argument("--no-services", action="store_true", help="frames without the control socket, delivery and roster attached (to see what they cost)")
    ap.add_argument("--as-is", action="store_true", help="keep this shell's bytecode settings (PYTHONDONTWRITEBYTECODE makes the project's modules compile on every start)")
    ap.add_argument("--frame-child", metavar="OUT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    global PYCACHE
    if not args.as_is and not args.frame_child:
        PYCACHE = tempfile.mkdtemp(prefix="ggen-bench-pycache-")
    if args.frame_child:
        frame_child(args.frame_child, args.seconds, args.services, args.speed, attach=not args.no_services)
        return
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}; "
          + ("bytecode caches as this shell has them" if PYCACHE is None else "bytecode cached (private PYTHONPYCACHEPREFIX)"))
    if not args.skip_startup:
        st = bench_startup(args.runs)
        print(f"\nfirst full frame (median of {args.runs}, 120x40 pty):")
        print(f"  ggen console        {st['console_s'] * 1000:7.0f} ms   (runs: {', '.join(f'{x * 1000:.0f}' for x in st['console_all'])})")
        print(f"  minimal Textual app {st['minimal_s'] * 1000:7.0f} ms   (runs: {', '.join(f'{x * 1000:.0f}' for x in st['minimal_all'])})")
        print(f"  ratio               {st['ratio']:7.2f}x  (goal <= 1.5x)")
        print(f"  (first start on an empty data directory: keys, ledger, policy validated and kept: {st['cold_s'] * 1000:.0f} ms)")
    if args.history_ticks:
        hb = bench_history(args.history_ticks, args.services)
        print(f"\ncontrol-socket metric history, {args.services} services, {args.history_ticks} ticks (its 30-min window at 1 s ticks), virtual clock:")
        print(f"  objects the garbage collector tracks beyond the engine's: {hb['tracked']:,.0f}; a full collection then takes {hb['full_gc_ms']:.1f} ms "
              f"(engine tick + history sample {hb['tick_ms']:.2f} ms)")
    if args.skip_frames:
        return
    fr = bench_frames(args.seconds, args.services, args.speed, attach=not args.no_services)
    ms = lambda xs, q: pct(xs, q) * 1000  # noqa: E731
    print(f"\n{args.services} services at {args.speed:g}x for {fr['wall_s']:.1f} s (160x50 pty{', no control socket/delivery' if args.no_services else ''}): {fr['engine_s']:.0f} s of engine time "
          f"({fr['engine_s'] / fr['wall_s']:.1f}x achieved), {fr['incidents']} incidents" + (f", ENGINE CRASHED: {fr['crash']}" if fr["crash"] else ""))
    for label, key in (("screen update (layout+render+write)", "frames"), ("  of which CPU time of the UI thread", "frame_cpu"), ("apply a reading to widgets (UI)", "applies"), ("read the engine (worker thread)", "reads"), ("UI loop stall (10 ms timer lateness)", "stalls")):
        xs = fr[key]
        print(f"  {label:38} n={len(xs):5}  p50 {ms(xs, 0.5):6.1f} ms  p99 {ms(xs, 0.99):6.1f} ms  worst {max(xs) * 1000 if xs else float('nan'):6.1f} ms")
    for g, xs in sorted(fr.get("gc", {}).items()):
        if xs:
            print(f"  garbage collection, generation {g}        n={len(xs):5}  p50 {ms(xs, 0.5):6.1f} ms  p99 {ms(xs, 0.99):6.1f} ms  worst {max(xs) * 1000:6.1f} ms")
    if fr.get("big_stalls"):
        print("  UI stalls over 30 ms (s into the run, ms): " + ", ".join(f"{t:g}s {d:g}" for t, d in fr["big_stalls"][:20]))


if __name__ == "__main__":
    main()
