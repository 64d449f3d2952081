"""Knowledge-base benchmark: search latency and index build time, beside tantivy's raw speed.

Prints, on this machine:
  - search quality on the evaluation set (MRR, precision at 3) over the packaged entries;
  - search latency (median, p99) over the packaged entries and over N generated entries, for
    ``KnowledgeBase.search`` as the CLI calls it (freshness check of every entry file, query
    building, BM25, snippets, hit assembly), the same without the freshness check, and raw
    tantivy (a prebuilt boolean query of the same terms, top 10 addresses, no documents fetched);
  - index build time for N generated entries, split into parsing/validation, document
    preparation and tantivy indexing, plus incremental refresh after one edit and a no-op refresh;
  - the time of one whole ``ggen knowledge search`` process (interpreter start included).

Run: ``.venv/bin/python bench/knowledge_bench.py [--entries 10000] [--rounds 5]``
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tantivy  # noqa: E402

from analyzer.knowledge import PACKAGED_DIR, KnowledgeBase, make_request, read_entry  # noqa: E402
from analyzer.knowledge.index import build_schema, entry_document  # noqa: E402
from analyzer.knowledge.synthetic import write_synthetic  # noqa: E402
from engine.datadir import DataDir  # noqa: E402

EVAL = ROOT / "tests" / "data" / "knowledge_eval.toml"


def cases() -> list[dict]:
    return tomllib.loads(EVAL.read_text())["case"]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def fmt(ms: list[float]) -> str:
    return f"median {statistics.median(ms):7.2f} ms   p99 {pct(ms, 0.99):7.2f} ms   (n={len(ms)})"


def quality(kb: KnowledgeBase) -> tuple[float, float]:
    rr, p3 = [], []
    for c in cases():
        flag = c.get("flag", "symptoms")
        req = make_request(**{flag: c["query"]}, types=[c["type"]] if c.get("type") else (), limit=10)
        got = [h.entry_id for h in kb.search(req, log=False).hits]
        exp = set(c["expect"])
        rel = exp | set(c.get("relevant", []))
        rank = next((i + 1 for i, x in enumerate(got) if x in exp), None)
        rr.append(1 / rank if rank else 0.0)
        p3.append(len([x for x in got[:3] if x in rel]) / min(3, len(rel)))
    return sum(rr) / len(rr), sum(p3) / len(p3)


def latencies(kb: KnowledgeBase, rounds: int) -> dict[str, list[float]]:
    """Per-query wall times of the three layers, in milliseconds."""
    qs = [(c.get("flag", "symptoms"), c["query"]) for c in cases()]
    full, no_refresh, raw = [], [], []
    searcher = kb.searcher()
    schema = kb.schema
    from analyzer.knowledge.query import QueryBuilder, parse_query

    # Raw tantivy: the same user words as plain term queries over the same fields, built once.
    prebuilt = []
    for flag, q in qs:
        b = QueryBuilder(schema, searcher, kb.settings)
        words = [c.node.text for c in parse_query(q, kb.settings).clauses if hasattr(c.node, "text")]
        terms = [t for w in words for t in b.stem.analyze(w)]
        subs = [
            (tantivy.Occur.Should, tantivy.Query.term_query(schema, f, t))
            for t in terms
            for f in ("title", "symptoms", "root_cause", "resolution", "prevention", "body")
        ]
        prebuilt.append(tantivy.Query.boolean_query(subs) if subs else tantivy.Query.all_query())
    kb.search(make_request(symptoms="warm up"), log=False)
    for _ in range(rounds):
        for (flag, q), rq in zip(qs, prebuilt):
            req = make_request(**{flag: q}, limit=10)
            t = time.perf_counter()
            kb.search(req, log=False)
            full.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            kb.search(req, log=False, refresh=False)
            no_refresh.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            searcher.search(rq, 10)
            raw.append((time.perf_counter() - t) * 1000)
    return {"full": full, "no_refresh": no_refresh, "raw": raw}


def cli_once(data: Path, entries: Path) -> float:
    env = dict(os.environ, GGEN_DATA_DIR=str(data), GGEN_KNOWLEDGE_DIRS=str(entries))
    exe = ROOT / ".venv" / "bin" / "ggen"
    cmd = [str(exe) if exe.exists() else "ggen", "knowledge", "search", "--symptoms", "latency spike p99", "--json"]
    subprocess.run(cmd, env=env, capture_output=True, check=True)  # warm the page cache
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=10_000, help="generated entries for the large index")
    ap.add_argument("--rounds", type=int, default=5, help="passes over the 52 evaluation queries")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ggen-kb-bench-"))
    print(f"machine: {os.cpu_count()} CPUs, tantivy {tantivy.__version__}, Python {sys.version.split()[0]}")

    # --- the packaged entries ------------------------------------------------------------------
    real = KnowledgeBase(DataDir(tmp / "real"), entry_dirs=[PACKAGED_DIR])
    t = time.perf_counter()
    rep = real.refresh()
    n_real = len(rep.added)
    print(f"\npackaged entries: {n_real}; index build {(time.perf_counter() - t) * 1000:.0f} ms")
    mrr, p3 = quality(real)
    print(f"evaluation set: {len(cases())} queries   MRR {mrr:.3f}   precision@3 {p3:.3f}")
    lat = latencies(real, args.rounds)
    print(f"  search (as the CLI calls it)      {fmt(lat['full'])}")
    print(f"  search without freshness check    {fmt(lat['no_refresh'])}")
    print(f"  raw tantivy term query, top 10    {fmt(lat['raw'])}")
    print(f"  one `ggen knowledge search` process: {cli_once(tmp / 'cli-real', PACKAGED_DIR):.0f} ms (interpreter start included)")

    # --- generated entries -----------------------------------------------------------------------
    n = args.entries
    gen_dir = tmp / "generated"
    t = time.perf_counter()
    paths = write_synthetic(gen_dir, n)
    print(f"\ngenerated entries: {n} written in {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    entries = [read_entry(p) for p in paths]
    t_parse = time.perf_counter() - t
    t = time.perf_counter()
    docs = [entry_document(e) for e in entries]
    t_docs = time.perf_counter() - t
    raw_index = tantivy.Index(build_schema(), path=str(Path(tempfile.mkdtemp(dir=tmp))))
    writer = raw_index.writer(heap_size=128_000_000, num_threads=max(1, min(4, os.cpu_count() or 1)))
    t = time.perf_counter()
    for d in docs:
        writer.add_document(d)
    writer.commit()
    writer.wait_merging_threads()
    t_tantivy = time.perf_counter() - t
    print(f"  parse + validate (YAML, pydantic, sections)  {t_parse:6.2f} s  ({t_parse / n * 1e6:.0f} us/entry)")
    print(f"  document preparation (plain text, keys)      {t_docs:6.2f} s")
    print(f"  raw tantivy add + commit                     {t_tantivy:6.2f} s")

    big = KnowledgeBase(DataDir(tmp / "big"), entry_dirs=[gen_dir])
    t = time.perf_counter()
    rep = big.refresh()
    t_build = time.perf_counter() - t
    assert len(rep.added) == n and not rep.errors, rep.errors[:3]
    print(f"  index build through KnowledgeBase.refresh   {t_build:6.2f} s  ({n / t_build:,.0f} entries/s)")
    t = time.perf_counter()
    big.refresh()
    print(f"  no-op refresh (stat {n} files)              {(time.perf_counter() - t) * 1000:6.1f} ms")
    victim = paths[n // 2]
    victim.write_text(victim.read_text().replace("Customers saw", "Customers noticed"))
    t = time.perf_counter()
    rep = big.refresh()
    print(f"  refresh after editing one entry             {(time.perf_counter() - t) * 1000:6.1f} ms  (updated {len(rep.updated)})")

    lat = latencies(big, args.rounds)
    print(f"  search (as the CLI calls it)      {fmt(lat['full'])}")
    print(f"  search without freshness check    {fmt(lat['no_refresh'])}")
    print(f"  raw tantivy term query, top 10    {fmt(lat['raw'])}")
    print(f"  one `ggen knowledge search` process: {cli_once(tmp / 'big', gen_dir):.0f} ms (interpreter start included)")


if __name__ == "__main__":
    main()
