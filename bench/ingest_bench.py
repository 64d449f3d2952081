"""Benchmark ``ggen ingest`` against DuckDB's own JSON reader and lnav, side by side.

Generates a JSON Lines file and an RFC 3164 syslog file (1,000,000 lines each by default) under
bench/out/ (never committed), then runs each contender in a fresh process several times,
interleaved, and prints wall time, MB/s, lines/s and peak RSS (from /usr/bin/time -v style
accounting via wait4). Reports the median and the best run; on a shared machine the best run is
the fairer figure, the median says how noisy the machine was.

    .venv/bin/python bench/ingest_bench.py [--lines 1000000] [--runs 3] [--window] [--formats] [--as-is]

``--window`` also measures how much of the ``events`` table a 30-minute window query reads
compared with a full scan (row groups scanned, from DuckDB's profiler), on the ingested JSONL.
``--formats`` times, for every shipped text format, reading its regex groups in one go against
four at a time (what ``one_pass = true`` in the format file asks for), so the flag is set where
it pays. Wall times on a shared machine move with the load; the CPU seconds move much less, so
every goal is printed both ways.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PY = sys.executable
GGEN = str(Path(sys.executable).with_name("ggen"))
LNAV = shutil.which("lnav") or "/usr/bin/lnav"
LNAV_FORMAT = ROOT.parent / "shared" / "bench" / "lnav-format-bench-json.json"
START = datetime(2026, 1, 25, 6, 0, tzinfo=timezone.utc)
SPAN_S = 10 * 3600  # the generated logs cover ten hours

SERVICES = ["governor", "action-handler", "app", "upstream", "gateway"]
LEVELS = ["info"] * 80 + ["debug"] * 10 + ["warn"] * 7 + ["error"] * 3
MESSAGES = [
    "processed batch of {n} messages in {d} ms",
    "queue depth {n} for account {a}",
    "upstream call failed with 503 after {d} ms",
    "health check ok in {d} ms",
    "breaker state CLOSED, {n} probes ok",
]


def generate(lines: int) -> tuple[Path, Path]:
    """Write (or reuse) bench/out/bench-N.jsonl and bench-N.syslog, seeded and time-ordered."""
    OUT.mkdir(parents=True, exist_ok=True)
    jsonl = OUT / f"bench-{lines}.jsonl"
    syslog = OUT / f"bench-{lines}.syslog"
    if jsonl.exists() and syslog.exists():
        return jsonl, syslog
    rng = random.Random(20260125)
    step = SPAN_S / lines
    with open(jsonl, "w") as fj, open(syslog, "w") as fs:
        for i in range(lines):
            t = START + timedelta(seconds=i * step)
            svc = rng.choice(SERVICES)
            msg = rng.choice(MESSAGES).format(n=rng.randint(1, 999), a=rng.randint(1000, 9999), d=rng.randint(1, 5000))
            fj.write(
                '{"timestamp":"%s","level":"%s","service":"%s","trace_id":"%032x","status":%d,"message":"%s"}\n'
                % (t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), rng.choice(LEVELS), svc, rng.getrandbits(128), rng.choice((200, 200, 200, 503)), msg)
            )
            fs.write("%s gov-%d %s[%d]: %s\n" % (t.strftime("%b %d %H:%M:%S"), rng.randint(1, 9), svc, rng.randint(100, 9999), msg))
    # Year-less syslog takes its year from the file's mtime: keep it in 2026.
    stamp = (START + timedelta(seconds=SPAN_S)).timestamp()
    os.utime(syslog, (stamp, stamp))
    return jsonl, syslog


@dataclass
class Result:
    name: str
    input: Path
    lines: int
    walls: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    ok: bool = True
    note: str = ""


def measure(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, float, float, str]:
    """Run ``cmd`` in a fresh process; (wall seconds, CPU seconds, peak RSS MB, output tail)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[0]} failed: {out.decode(errors='replace')[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.decode(errors="replace")[-300:]


def contenders(jsonl: Path, syslog: Path, lines: int, scratch: Path, lnav_home: Path) -> list[tuple[str, Path, callable]]:  # type: ignore[valid-type]
    def ggen(path: Path) -> list[str]:
        db = scratch / f"ggen-{path.suffix[1:]}.duckdb"
        db.unlink(missing_ok=True)
        return [GGEN, "ingest", "--quiet", "--db", str(db), str(path)]

    def duck_json() -> list[str]:
        db = scratch / "duck.duckdb"
        db.unlink(missing_ok=True)
        code = f"import duckdb; c = duckdb.connect({str(db)!r}); c.execute(\"CREATE TABLE t AS SELECT * FROM read_json({str(jsonl)!r})\"); c.close()"
        return [PY, "-c", code]

    def duck_lines(path: Path) -> list[str]:
        db = scratch / "duck-lines.duckdb"
        db.unlink(missing_ok=True)
        code = (
            f"import duckdb; c = duckdb.connect({str(db)!r}); c.execute(\"CREATE TABLE t AS SELECT * FROM read_csv({str(path)!r}, "
            "columns={'line': 'VARCHAR'}, delim='\\x01\\x02\\x03\\x04', quote='', escape='', header=false, auto_detect=false)\"); c.close()"
        )
        return [PY, "-c", code]

    lnav_json = [LNAV, "-n", "-c", ";SELECT service, count(*) FROM bench_json GROUP BY 1", str(jsonl)]
    lnav_sys = [LNAV, "-n", "-c", ";SELECT log_procname, count(*) FROM syslog_log GROUP BY 1", str(syslog)]
    return [
        ("ggen ingest (JSONL)", jsonl, lambda: ggen(jsonl)),
        ("duckdb read_json CTAS", jsonl, duck_json),
        ("lnav (JSONL)", jsonl, lambda: lnav_json),
        ("ggen ingest (syslog)", syslog, lambda: ggen(syslog)),
        ("duckdb read_csv lines CTAS (syslog)", syslog, lambda: duck_lines(syslog)),
        ("lnav (syslog)", syslog, lambda: lnav_sys),
    ]


def window_fraction(db: Path) -> dict[str, float]:
    """Row groups a 30-minute window query reads, against a full scan of ``events``."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    prof = Path(tempfile.mkstemp(suffix=".json")[1])
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{prof}'")
    t0, t1 = START + timedelta(hours=5), START + timedelta(hours=5, minutes=30)
    out: dict[str, float] = {}
    for label, sql in (
        ("full", "SELECT count(*), max(message) FROM events"),
        ("window", f"SELECT count(*), max(message) FROM events WHERE ts >= TIMESTAMPTZ '{t0.isoformat()}' AND ts < TIMESTAMPTZ '{t1.isoformat()}'"),
    ):
        best = float("inf")
        for _ in range(5):
            a = time.perf_counter()
            con.execute(sql).fetchall()
            best = min(best, time.perf_counter() - a)
        q = json.loads(prof.read_text())["query"] if "query" in json.loads(prof.read_text()) else json.loads(prof.read_text())
        out[f"{label}_seconds"] = best
        out[f"{label}_row_groups"] = q.get("total_row_groups_scanned", float("nan"))
        out[f"{label}_rows_scanned"] = q.get("total_rows_scanned", float("nan"))
    con.close()
    prof.unlink(missing_ok=True)
    return out


def format_batches(lines: int, runs: int) -> None:
    """For each text format: CPU seconds to parse ``lines`` sample lines with its groups read in
    one regex match, and four at a time (RE2's one-pass engine takes at most four)."""
    import dataclasses
    import resource

    import duckdb

    from analyzer.ingest import load_catalog
    from analyzer.ingest import sql as q
    from analyzer.ingest.schema import create_schema

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    catalog = load_catalog()
    print(f"{'format':<20} {'groups':>6} {'one read s':>11} {'batches s':>10}  one_pass in its file")
    for fmt in catalog.text:
        path = OUT / f"format-{fmt.name}.log"
        samples = [s.line for s in fmt.sample]
        path.write_text("".join(samples[i % len(samples)] + "\n" for i in range(lines)))
        src = f"(SELECT NULL::BIGINT AS n, line FROM {q.read_lines(str(path))})"
        got = {}
        for one_pass in (False, True):
            sql = q.text_events_sql(src, "f", dataclasses.replace(fmt, one_pass=one_pass), catalog.levels, None, 2026, "2026-01-25T16:00:00+00:00")
            select = sql.split("\n", 2)[2]  # the SELECT without the INSERT line
            con = duckdb.connect()
            con.execute("SET threads = 1")
            create_schema(con)
            best = float("inf")
            for _ in range(runs):
                c = cpu()
                con.execute(f"SELECT count(*), max(c5), max(c9) FROM ({select}) t(c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11)").fetchall()
                best = min(best, cpu() - c)
            con.close()
            got[one_pass] = best
        path.unlink()
        print(f"{fmt.name:<20} {len(fmt.group_names):>6} {got[False]:>11.2f} {got[True]:>10.2f}  {str(fmt.one_pass).lower()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", action="store_true", help="also measure a 30-minute window query against a full scan")
    ap.add_argument("--formats", action="store_true", help="only time each text format's regex read in one go against four groups at a time")
    ap.add_argument("--as-is", action="store_true", help="keep this shell's bytecode settings (PYTHONDONTWRITEBYTECODE makes ggen's own modules compile on every start)")
    args = ap.parse_args()
    if args.formats:
        OUT.mkdir(parents=True, exist_ok=True)
        format_batches(min(args.lines, 300_000), args.runs)
        return

    jsonl, syslog = generate(args.lines)
    scratch = Path(tempfile.mkdtemp(prefix="ggen-bench-"))
    lnav_home = scratch / "home"
    (lnav_home / ".lnav" / "formats" / "installed").mkdir(parents=True)
    shutil.copy(LNAV_FORMAT, lnav_home / ".lnav" / "formats" / "installed" / LNAV_FORMAT.name)
    lnav_env = {**os.environ, "HOME": str(lnav_home)}
    # Python's bytecode caches: installed packages have theirs, but a shell that sets
    # PYTHONDONTWRITEBYTECODE (this working tree does) compiles ggen's own modules on every start,
    # which no installed ggen does. By default the Python contenders get a private cache
    # (PYTHONPYCACHEPREFIX), filled by an unmeasured first run.
    py_env = dict(os.environ)
    if not args.as_is:
        py_env.pop("PYTHONDONTWRITEBYTECODE", None)
        py_env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
        tiny = scratch / "warm.log"
        tiny.write_text("2026-01-25T14:15:00Z INFO warm up\n")
        measure([GGEN, "ingest", "--quiet", "--db", str(scratch / "warm.duckdb"), str(tiny)], env=py_env, cwd=ROOT)
    print(f"bytecode: {'as this shell has it' if args.as_is else 'cached (private PYTHONPYCACHEPREFIX)'}", file=sys.stderr)
    plan = contenders(jsonl, syslog, args.lines, scratch, lnav_home)
    results = {name: Result(name, path, args.lines) for name, path, _ in plan}
    try:
        for run in range(args.runs):
            for name, _, make in plan:
                env = lnav_env if name.startswith("lnav") else py_env
                try:
                    wall, cpu, rss, _ = measure(make(), env=env, cwd=ROOT)
                except (RuntimeError, FileNotFoundError) as exc:
                    results[name].ok, results[name].note = False, str(exc)[:200]
                    continue
                results[name].walls.append(wall)
                results[name].rss_mb.append(rss)
                results[name].cpus.append(cpu)
                print(f"run {run + 1}: {name:<38} {wall:6.2f} s {cpu:6.2f} s CPU {rss:7.0f} MB", file=sys.stderr)
        print()
        print(f"inputs: {jsonl.name} {jsonl.stat().st_size / 1e6:.0f} MB, {syslog.name} {syslog.stat().st_size / 1e6:.0f} MB, {args.lines:,} lines each; {os.cpu_count()} cores")
        print(f"bytecode: {'as this shell has it' if args.as_is else 'cached for the Python contenders (private PYTHONPYCACHEPREFIX)'}")
        print(f"load average when done: {os.getloadavg()[0]:.1f} (wall times on a busy machine are inflated; CPU seconds much less)")
        print(f"{'contender':<38} {'best s':>7} {'median s':>9} {'CPU s':>6} {'MB/s':>7} {'lines/s':>11} {'peak RSS MB':>12}")
        for r in results.values():
            if not r.ok or not r.walls:
                print(f"{r.name:<38} failed: {r.note}")
                continue
            best, med = min(r.walls), statistics.median(r.walls)
            size = r.input.stat().st_size / 1e6
            print(f"{r.name:<38} {best:7.2f} {med:9.2f} {min(r.cpus):6.2f} {size / best:7.1f} {r.lines / best:11,.0f} {max(r.rss_mb):12.0f}")

        def best(name: str) -> float:
            return min(results[name].walls) if results[name].walls else float("nan")

        def cpu(name: str) -> float:
            return min(results[name].cpus) if results[name].cpus else float("nan")

        def rss(name: str) -> float:
            return max(results[name].rss_mb) if results[name].rss_mb else float("nan")

        print()
        print("goals (best runs; CPU seconds in brackets):")
        ratio = best("ggen ingest (JSONL)") / best("duckdb read_json CTAS")
        print(f"  JSONL vs DuckDB read_json CTAS: {ratio:.2f}x the time (goal <= 1.5x) [CPU {cpu('ggen ingest (JSONL)') / cpu('duckdb read_json CTAS'):.2f}x]")
        speed = best("lnav (JSONL)") / best("ggen ingest (JSONL)")
        print(f"  JSONL vs lnav: {speed:.2f}x faster (goal >= 2x) [CPU {cpu('lnav (JSONL)') / cpu('ggen ingest (JSONL)'):.2f}x]")
        speed = best("lnav (syslog)") / best("ggen ingest (syslog)")
        print(f"  syslog vs lnav: {speed:.2f}x as fast (goal >= 1x) [CPU {cpu('lnav (syslog)') / cpu('ggen ingest (syslog)'):.2f}x]")
        print(f"  peak RSS vs lnav: JSONL {rss('ggen ingest (JSONL)') / rss('lnav (JSONL)'):.2f}x, syslog {rss('ggen ingest (syslog)') / rss('lnav (syslog)'):.2f}x (goal <= 2x)")
        if args.window:
            w = window_fraction(scratch / "ggen-jsonl.duckdb")
            print()
            print(
                f"window query (30 of {SPAN_S // 60} minutes) vs full scan: row groups {w['window_row_groups']:.0f} of {w['full_row_groups']:.0f}, "
                f"rows scanned {w['window_rows_scanned']:,.0f} of {w['full_rows_scanned']:,.0f}, "
                f"time {w['window_seconds'] * 1000:.1f} ms vs {w['full_seconds'] * 1000:.1f} ms ({w['window_seconds'] / w['full_seconds']:.0%})"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
