"""Knowledge search: boosts, phrases, fuzzy words, identifiers and numbers, filters, snippets,
hostile queries, the self-refreshing index, the query log and similar-incident suggestions."""
from __future__ import annotations

import os
import re
import time
from datetime import date
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.knowledge import PACKAGED_DIR, KnowledgeBase, make_request, read_entry, similar_incidents
from analyzer.knowledge.stats import query_log_path
from analyzer.knowledge.synthetic import synthetic_entry
from engine.datadir import DataDir

ENTRIES = {p.name[:-3]: read_entry(p) for p in PACKAGED_DIR.glob("incident-*.md")}


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    base = KnowledgeBase(DataDir(tmp_path_factory.mktemp("kbdata")), entry_dirs=[PACKAGED_DIR])
    base.refresh()
    return base


def ids(result) -> list[str]:
    return [h.entry_id for h in result.hits]


def search(kb: KnowledgeBase, **kw):
    return kb.search(make_request(**kw, settings=kb.settings), log=False)


def raw_text(entry_id: str) -> str:
    return ENTRIES[entry_id].path.read_text()


# --- ranking and matching -------------------------------------------------------------------


def write(d: Path, i: int, **kw) -> Path:
    name, text = synthetic_entry(i, **kw)
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(text)
    return p


def test_symptoms_rank_above_body_text(tmp_path: Path) -> None:
    d = tmp_path / "e"
    a = write(d, 1, sections={"Symptoms": "Dashboards showed a zebrafish warning on every page."})
    b = write(d, 2, sections={"Lessons Learned": "- Went well: the zebrafish warning was documented.\n- Can improve: more zebrafish."})
    kb = KnowledgeBase(DataDir(tmp_path / "data"), entry_dirs=[d])
    r = search(kb, symptoms="zebrafish")
    assert ids(r) == [a.name[:-3], b.name[:-3]]
    assert r.hits[0].score > r.hits[1].score
    assert r.hits[0].snippet.field == "symptoms"
    # The same word searched as a solution ranks the entry that has it in its resolution.
    c = write(d, 3, sections={"Resolution": "Fixed by feeding the zebrafish. What failed first: nothing."})
    r = search(kb, solution="zebrafish")
    assert ids(r)[0] == c.name[:-3]


def test_quoted_phrase_requires_adjacent_words(tmp_path: Path) -> None:
    d = tmp_path / "e"
    together = write(d, 1, sections={"Symptoms": "The warp drive coil overheated."})
    apart = write(d, 2, sections={"Symptoms": "The coil of the drive and the warp gauge."})
    kb = KnowledgeBase(DataDir(tmp_path / "data"), entry_dirs=[d])
    assert ids(search(kb, symptoms='"warp drive coil"')) == [together.name[:-3]]
    assert set(ids(search(kb, symptoms="warp drive coil"))) == {together.name[:-3], apart.name[:-3]}
    # Unquoted, the entry with the words side by side still ranks first (proximity bonus).
    assert ids(search(kb, symptoms="warp drive coil"))[0] == together.name[:-3]


def test_typos_match_fuzzily_and_say_what_they_matched(kb: KnowledgeBase) -> None:
    r = search(kb, symptoms="latncy spik")
    assert r.hits, r.warnings
    assert "latency" in r.corrections["latncy"]
    assert any("'latncy' is not in any entry" in w for w in r.warnings)
    assert all("latency" in raw_text(i).lower() for i in ids(r)[:5])
    # The corrected word is what the snippet highlights.
    top = r.hits[0].snippet
    marked = [top.text[a:b].lower() for a, b in top.highlights]
    assert any(m.startswith("latenc") or m.startswith("spike") for m in marked), marked


def test_known_words_are_not_fuzzed(kb: KnowledgeBase) -> None:
    r = search(kb, symptoms="latency")
    assert r.corrections == {} and not any("not in any entry" in w for w in r.warnings)


@pytest.mark.parametrize(
    ("query", "must_contain"),
    [
        ("custom.governor/queue_depth", "custom.governor/queue_depth"),
        ("queue_depth", "queue_depth"),
        ("request_latency_p99_ms", "request_latency_p99_ms"),
        ("idx_user_account", "idx_user_account"),
        ("us-west1", "us-west1"),
        ("acct-3003", "acct-3003"),
    ],
)
def test_identifiers_match_whole(kb: KnowledgeBase, query: str, must_contain: str) -> None:
    r = search(kb, text=query, limit=5)
    assert r.hits
    for i in ids(r)[:3]:
        assert must_contain in raw_text(i), (query, i)


def test_identifier_parts_match_too(kb: KnowledgeBase) -> None:
    # "p99" is a part of request_latency_p99_ms; "governor queue depth" are parts of the metric name.
    r = search(kb, symptoms="governor queue depth", limit=10)
    assert any("custom.governor/queue_depth" in raw_text(i) for i in ids(r)[:3])
    whole = set(ids(search(kb, text="request_latency_p99_ms", limit=50)))
    parts = set(ids(search(kb, text="p99", limit=50)))
    assert whole <= parts


def test_numbers_match_with_or_without_thousands_separators(kb: KnowledgeBase) -> None:
    for q in ("3847", "3,847"):
        r = search(kb, symptoms=q, limit=3)
        assert ids(r)[0] == "incident-queue-backlog-slow-consumer-2026-01-25", q
    r = search(kb, symptoms="4200", limit=5)
    assert "incident-latency-spike-missing-index-2025-04-09" in ids(r)


def test_status_codes_match_with_plural(kb: KnowledgeBase) -> None:
    a = ids(search(kb, symptoms="504", limit=50))
    b = ids(search(kb, symptoms="504s", limit=50))
    assert a and set(a) == set(b)
    for i in a:
        assert "504" in raw_text(i)


def test_filters(kb: KnowledgeBase) -> None:
    r = search(kb, symptoms="error rate", types=["error"], severities=["1", "Sev2"], limit=100)
    assert r.hits
    for h in r.hits:
        assert "error_rate_spike" in h.incident_types and h.severity in ("Sev1", "Sev2")
    expected = {
        k for k, e in ENTRIES.items() if "error_rate_spike" in e.meta.incident_types and e.meta.severity in ("Sev1", "Sev2")
    }
    assert set(ids(r)) <= expected
    window = search(kb, since=date(2025, 6, 1), until=date(2025, 9, 30), limit=100)
    assert set(ids(window)) == {k for k, e in ENTRIES.items() if date(2025, 6, 1) <= e.meta.date <= date(2025, 9, 30)}
    assert ids(window) == sorted(ids(window), key=lambda i: ENTRIES[i].meta.date, reverse=True)
    by_cause = search(kb, causes=["dns-propagation"], limit=100)
    assert set(ids(by_cause)) == {k for k, e in ENTRIES.items() if "dns_propagation" in e.meta.causes}
    by_service = search(kb, symptoms="breaker", services=["external-api"], limit=100)
    assert by_service.hits and all("external-api" in h.services for h in by_service.hits)
    with pytest.raises(ValueError, match="unknown incident type"):
        make_request(types=["nonsense"])
    with pytest.raises(ValueError, match="after --until"):
        make_request(since=date(2026, 1, 2), until=date(2026, 1, 1))


def test_field_terms_in_queries(kb: KnowledgeBase) -> None:
    r = search(kb, text="type:failover sev:1 dns", limit=20)
    assert r.hits and all("region_failover" in h.incident_types for h in r.hits)
    r = search(kb, text="breaker -type:circuit_breaker_opened", limit=50)
    assert r.hits and all("circuit_breaker_opened" not in h.incident_types for h in r.hits)
    r = search(kb, text="dns (type:latency OR type:failover)", limit=50)
    assert r.hits and all({"latency_spike", "region_failover"} & set(h.incident_types) for h in r.hits)
    r = search(kb, text="cause:feature_flag", limit=50)
    assert set(ids(r)) == {k for k, e in ENTRIES.items() if "feature_flag" in e.meta.causes}
    r = search(kb, text="rollback AND canary", limit=50)
    assert r.hits and all("canary" in raw_text(i).lower() and "rollback" in raw_text(i).lower() for i in ids(r))


def test_snippets_are_plain_text_with_ranges(kb: KnowledgeBase) -> None:
    r = search(kb, symptoms="breaker OPEN 503", limit=5)
    for h in r.hits:
        s = h.snippet
        assert s is not None and s.text and "\n" not in s.text
        assert "**" not in s.text and "`" not in s.text
        for a, b in s.highlights:
            assert 0 <= a < b <= len(s.text)
            assert re.fullmatch(r"[\w.]+", s.text[a:b]), s.text[a:b]


def test_hit_carries_what_an_on_call_needs(kb: KnowledgeBase) -> None:
    h = search(kb, symptoms="seq scan user_accounts", limit=1).hits[0]
    e = ENTRIES[h.entry_id]
    assert h.root_cause == e.meta.root_cause and h.solution == e.meta.solution
    assert h.mttr_min == e.meta.mttr_min and h.prevention == tuple(t for _, t in e.prevention_items()["Short-term"])
    j = h.to_json()
    assert j["id"] == h.entry_id and j["snippet"]["highlights"]


# --- hostile input ----------------------------------------------------------------------------

HOSTILE = [
    '"unbalanced quote',
    "latency AND",
    "AND OR NOT",
    "( ( (",
    ")",
    "a : b",
    ":",
    "type:",
    "type:nonsense",
    "sev:9",
    "+",
    "-",
    "--",
    "++latency",
    "\x1b[31mred\x1b[0m",
    "\x00\x01\x02",
    "\ud800 lone surrogate",
    "[bold]markup[/bold] <script>alert(1)</script>",
    "*" * 500,
    "latency " * 400,
    "((" * 50 + "x" + "))" * 50,
    "p99 > 1000 AND status_code >= 500",
    "🔥🔥 queue 🔥",
    "",
    "   ",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_crash(kb: KnowledgeBase, query: str) -> None:
    for flag in ("symptoms", "text"):
        r = search(kb, **{flag: query})
        assert isinstance(r.total, int)
        assert r.total >= len(r.hits)


def test_syntax_errors_fall_back_to_plain_words(kb: KnowledgeBase) -> None:
    plain = search(kb, symptoms="latency spike")
    broken = search(kb, symptoms='latency "spike')
    assert any(w.startswith("query syntax: unbalanced quote") for w in broken.warnings)
    assert ids(broken) == ids(plain)
    r = search(kb, symptoms="latency AND")
    assert any("'AND' needs a term after it" in w for w in r.warnings) and r.hits
    r = search(kb, symptoms="( queue")
    assert any("never closed" in w for w in r.warnings) and r.hits
    r = search(kb, symptoms="queue : depth")
    assert any("stray ':'" in w for w in r.warnings) and r.hits
    long = search(kb, symptoms="latency " * 400)
    assert any("only the first" in w for w in long.warnings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_any_text_is_a_valid_query(kb: KnowledgeBase, text: str) -> None:
    r = search(kb, symptoms=text, limit=3)
    assert len(r.hits) <= 3


# --- the index follows the files ----------------------------------------------------------------


def test_index_refreshes_when_entries_change(tmp_path: Path) -> None:
    d = tmp_path / "e"
    p1 = write(d, 1, sections={"Symptoms": "Pelican alarms everywhere."})
    p2 = write(d, 2, sections={"Symptoms": "Quiet night, one walrus alert."})
    kb = KnowledgeBase(DataDir(tmp_path / "data"), entry_dirs=[d])
    first = kb.refresh()
    assert first.rebuilt and sorted(first.added) == sorted([p1.name[:-3], p2.name[:-3]])
    assert kb.refresh().changed is False
    assert ids(search(kb, symptoms="pelican")) == [p1.name[:-3]]

    # Edit in place: the new word is found, the old one is gone.
    p1.write_text(p1.read_text().replace("Pelican alarms", "Albatross alarms"))
    r = kb.search(make_request(symptoms="albatross"), log=False)
    assert r.refresh is not None and r.refresh.updated == [p1.name[:-3]]
    assert ids(r) == [p1.name[:-3]] and search(kb, symptoms="pelican").hits == []

    # Touch without a content change: the hash matches, nothing is re-indexed.
    os.utime(p2, ns=(time.time_ns(), time.time_ns() + 10**9))
    rep = kb.refresh()
    assert not rep.changed and rep.unchanged == 2

    # A new file is added, a deleted one removed.
    p3 = write(d, 3, sections={"Symptoms": "Heron sightings in the logs."})
    assert kb.refresh().added == [p3.name[:-3]]
    p2.unlink()
    assert kb.refresh().removed == [p2.name[:-3]]
    assert search(kb, symptoms="walrus").hits == []

    # A broken edit is reported on every search and its entry leaves the index, until it is fixed.
    good = p3.read_text()
    p3.write_text(good.replace("severity: Sev", "severity: Level", 1))
    r = kb.search(make_request(symptoms="heron"), log=False)
    assert r.hits == []
    assert any(str(p3) in w and "field severity" in w for w in r.warnings)
    assert any(str(p3) in w for w in kb.search(make_request(symptoms="anything"), log=False).warnings)
    p3.write_text(good)
    assert ids(search(kb, symptoms="heron")) == [p3.name[:-3]]


def test_a_second_process_view_of_the_index_is_fresh(tmp_path: Path) -> None:
    d = tmp_path / "e"
    p1 = write(d, 1, sections={"Symptoms": "Otter alert."})
    data = DataDir(tmp_path / "data")
    a = KnowledgeBase(data, entry_dirs=[d])
    a.refresh()
    b = KnowledgeBase(data, entry_dirs=[d])  # another command, same data dir
    assert ids(b.search(make_request(symptoms="otter"), log=False)) == [p1.name[:-3]]
    p1.write_text(p1.read_text().replace("Otter", "Beaver"))
    assert ids(b.search(make_request(symptoms="beaver"), log=False)) == [p1.name[:-3]]
    assert ids(a.search(make_request(symptoms="beaver"), log=False)) == [p1.name[:-3]]


def test_corrupt_or_outdated_index_is_rebuilt(tmp_path: Path) -> None:
    d = tmp_path / "e"
    p1 = write(d, 1, sections={"Symptoms": "Kingfisher alert."})
    data = DataDir(tmp_path / "data")
    KnowledgeBase(data, entry_dirs=[d]).refresh()
    manifest = data.knowledge_index_dir / "manifest.json"
    m = orjson.loads(manifest.read_bytes())
    m["schema"] = -1
    manifest.write_bytes(orjson.dumps(m))
    kb = KnowledgeBase(data, entry_dirs=[d])
    assert kb.refresh().rebuilt
    for f in data.knowledge_index_dir.iterdir():
        if f.suffix in (".idx", ".store", ".term", ".pos", ".fieldnorm", ".fast") or f.name == "meta.json":
            f.write_bytes(b"garbage")
    kb2 = KnowledgeBase(data, entry_dirs=[d])
    rep = kb2.refresh(force=True)
    assert rep.rebuilt and ids(search(kb2, symptoms="kingfisher")) == [p1.name[:-3]]


def test_duplicate_incident_ids_are_reported(tmp_path: Path) -> None:
    d1, d2 = tmp_path / "a", tmp_path / "b"
    p1 = write(d1, 1)
    p2 = write(d2, 1)  # same generated entry, same incident id, in a second directory
    kb = KnowledgeBase(DataDir(tmp_path / "data"), entry_dirs=[d1, d2])
    rep = kb.refresh()
    assert rep.added == [p1.name[:-3]]
    assert len(rep.errors) == 1 and str(p2) in str(rep.errors[0]) and "duplicate" in str(rep.errors[0])


def test_unusable_data_dir_still_searches(tmp_path: Path) -> None:
    # A data dir that cannot be created (its parent is a file) must not stop a search at 3 a.m.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    kb = KnowledgeBase(DataDir(blocker / "data"), entry_dirs=[PACKAGED_DIR])
    r = kb.search(make_request(symptoms="latency"))
    assert r.hits and any("in-memory index" in w for w in r.warnings)
    assert any("could not record this query" in w for w in r.warnings)
    assert kb.search(make_request(symptoms="latency"), log=False).hits  # the memory index is reused


# --- query log and similar incidents ---------------------------------------------------------------


def test_queries_are_logged_with_zero_results_marked(tmp_path: Path) -> None:
    kb = KnowledgeBase(DataDir(tmp_path / "data"), entry_dirs=[PACKAGED_DIR])
    kb.search(make_request(symptoms="queue depth"), now_ms=1_780_000_000_000)
    kb.search(make_request(symptoms="qwxzzyv"), now_ms=1_780_000_000_500)
    kb.search(make_request(symptoms="queue depth"), log=False)
    lines = [orjson.loads(x) for x in query_log_path(kb.data_dir).read_bytes().splitlines()]
    assert [x["query"]["symptoms"] for x in lines] == ["queue depth", "qwxzzyv"]
    assert lines[0]["hits"] > 0 and lines[1]["hits"] == 0 and lines[1]["at"].startswith("2026-05-28")


def test_similar_incidents_from_type_and_signals(kb: KnowledgeBase) -> None:
    hits = similar_incidents(
        "error_rate_spike",
        {"service": "app", "p99_ms": 4200, "error_rate_pct": 38, "root_cause_hint": "bad_deploy", "status_code": 500},
        kb=kb,
    )
    assert hits and len(hits) <= 5
    assert "error_rate_spike" in hits[0].incident_types and "bad_deploy" in hits[0].causes
    assert hits[0].entry_id == "incident-error-rate-spike-bad-deploy-2025-02-11"
    queue = similar_incidents("queue_backlog_overflow", {"service": "governor", "queue_depth": 3847, "lag_p99_s": 540}, limit=3, kb=kb)
    assert all("queue_backlog_overflow" in h.incident_types for h in queue)
    excluded = similar_incidents(
        "error_rate_spike", {"root_cause_hint": "bad_deploy"}, kb=kb, exclude=["urn:uuid:45208e27-0ef3-4316-a159-4cc9b475bd0b"]
    )
    assert "incident-error-rate-spike-bad-deploy-2025-02-11" not in [h.entry_id for h in excluded]
    failover = similar_incidents("region_failover", {"region": "us-central1", "health_check_failures": 3, "replication_lag_ms": 2500}, kb=kb)
    assert all("region_failover" in h.incident_types for h in failover[:3])
    assert "incident-region-failover-replication-lag-2026-02-03" in [h.entry_id for h in failover[:3]]


def test_similar_incidents_uses_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "e"
    p = write(d, 1, incident_types=["latency_spike"], causes=["cpu_saturation"])
    monkeypatch.setenv("GGEN_KNOWLEDGE_DIRS", str(d))
    hits = similar_incidents("latency_spike", {"cpu_pct": 97}, data_dir=tmp_path / "data")
    assert [h.entry_id for h in hits] == [p.name[:-3]]
    assert (tmp_path / "data" / "knowledge-index" / "manifest.json").exists()


def test_big_rebuilds_prepare_entries_on_all_cores_with_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import analyzer.knowledge.index as index_module

    d = tmp_path / "e"
    for i in range(10):
        write(d, i)
    broken = write(d, 10)
    broken.write_text(broken.read_text().replace("severity: Sev", "severity: Level", 1))
    dup = write(tmp_path / "dup", 3)  # same incident as entry 3
    serial = KnowledgeBase(DataDir(tmp_path / "serial"), entry_dirs=[d, dup.parent]).refresh()
    monkeypatch.setattr(index_module, "PARALLEL_MIN_FILES", 4)
    parallel_kb = KnowledgeBase(DataDir(tmp_path / "parallel"), entry_dirs=[d, dup.parent])
    parallel = parallel_kb.refresh()
    assert sorted(parallel.added) == sorted(serial.added) and len(parallel.added) == 10
    assert [str(e) for e in parallel.errors] == [str(e) for e in serial.errors] and len(parallel.errors) == 2
    assert len(ids(search(parallel_kb, text="symptoms OR breaker OR queue", limit=50))) >= 1


def test_a_duplicate_becomes_valid_when_the_original_goes(tmp_path: Path) -> None:
    p1 = write(tmp_path / "a", 1)
    p2 = write(tmp_path / "b", 1)
    kb = KnowledgeBase(DataDir(tmp_path / "data"), entry_dirs=[tmp_path / "a", tmp_path / "b"])
    assert len(kb.refresh().errors) == 1
    p1.unlink()
    rep = kb.refresh()
    assert rep.errors == [] and rep.added == [p2.name[:-3]] and rep.removed == [p1.name[:-3]]


def _refresh_in_child(root: str, entries: str) -> tuple[int, int]:
    kb = KnowledgeBase(DataDir(Path(root)), entry_dirs=[Path(entries)])
    rep = kb.refresh()
    return len(rep.added), kb.searcher().num_docs


def test_two_processes_refreshing_at_once_share_one_index(tmp_path: Path) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from analyzer.knowledge.synthetic import write_synthetic

    write_synthetic(tmp_path / "e", 300)
    args = (str(tmp_path / "data"), str(tmp_path / "e"))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_refresh_in_child, *zip(args, args)))
    # One process indexed everything under the lock; the other found it done. Both see 300 documents.
    assert sorted(added for added, _ in results) == [0, 300]
    assert all(docs == 300 for _, docs in results)


def test_broken_search_settings_name_the_file_and_field(tmp_path: Path) -> None:
    from analyzer.knowledge.settings import SETTINGS_PATH, load_settings
    from engine.policy.loader import PolicyError

    bad = tmp_path / "search.toml"
    bad.write_text(SETTINGS_PATH.read_text().replace("keys_boost = 3.0", 'keys_boost = "high"'))
    with pytest.raises(PolicyError) as exc:
        load_settings(bad)
    assert exc.value.path == str(bad) and exc.value.field == "keys_boost"
    bad.write_text(SETTINGS_PATH.read_text().replace("[fields.solution]", "[fields.solutions]"))
    with pytest.raises(PolicyError) as exc:
        load_settings(bad)
    assert exc.value.field is not None and "fields" in exc.value.field


def test_entry_dirs_from_config_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analyzer.knowledge import default_entry_dirs
    from engine.policy.loader import PolicyError

    monkeypatch.delenv("GGEN_KNOWLEDGE_DIRS", raising=False)
    dd = DataDir(tmp_path / "data").ensure()
    assert default_entry_dirs(dd) == [PACKAGED_DIR, dd.root / "knowledge-base"]
    dd.config_path.write_text('[delivery]\n\n[knowledge]\nentry_dirs = ["kb", "/srv/shared-kb"]\n')
    assert default_entry_dirs(dd) == [PACKAGED_DIR, (dd.root / "kb").resolve(), Path("/srv/shared-kb")]
    dd.config_path.write_text('[knowledge]\nentry_dirs = ["kb"]\ninclude_packaged = false\n')
    assert default_entry_dirs(dd) == [(dd.root / "kb").resolve()]
    dd.config_path.write_text('[knowledge]\nentry_dir = "kb"\n')
    with pytest.raises(PolicyError) as exc:
        default_entry_dirs(dd)
    assert exc.value.field == "knowledge.entry_dir" and exc.value.path == str(dd.config_path)
    monkeypatch.setenv("GGEN_KNOWLEDGE_DIRS", str(tmp_path / "x"))
    assert default_entry_dirs(dd) == [(tmp_path / "x").resolve()]
