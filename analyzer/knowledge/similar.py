"""Past incidents like an open one: the query is built from the incident's type and live signals.

The console shows these next to an open incident and the PIR draft lists them under "Similar
incidents". Signals are whatever the detector knows (service, region, p99, error rate, a
root-cause hint); their names map to words through ``[similar.signal_terms]`` in search.toml.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace

import tantivy

from engine.clock import parse_iso_ms
from engine.datadir import DataDir

from .entry import CAUSES
from .index import KnowledgeBase, SearchHit
from .query import Clause, ParsedQuery, QueryBuilder, Word, resolve_incident_type

SignalValue = int | float | str | bool | None
_UNIT_SUFFIX = re.compile(r"_(ms|s|pct|bp|ppm|count|total|per_s|per_min|percent|seconds|minutes)$")


def signal_words(incident_type: str, signals: Mapping[str, SignalValue], kb: KnowledgeBase) -> tuple[list[str], dict[str, list[str]]]:
    """The words a query is made of, and the exact facets (types, services, causes) to rank by.

    A numeric signal says something only when it is the one that fired (``signal``) or is past
    its ``[similar.signal_thresholds]`` value: an error spike's ordinary 55% memory must not pull
    in the garbage-collection incidents. A recent deploy or config change is a cause signal.
    """
    sim = kb.settings.similar
    terms = sim.signal_terms
    words: list[str] = []
    facets: dict[str, list[str]] = {"types": [], "services": [], "causes": []}
    t = resolve_incident_type(incident_type, kb.settings)
    if t is not None:
        facets["types"].append(t)
        words += t.split("_")
    fired = str(signals.get("signal") or "").strip().lower()
    reference_ms = _time_ms(signals.get("first_anomaly_at")) or _time_ms(signals.get("detected_at"))

    def add_cause(c: str) -> None:
        facets["causes"].append(c)
        if c in terms:
            words.extend(terms[c].split())

    for key, value in signals.items():
        if value is None or value is False:
            continue
        k = key.strip().lower()
        if k in ("service", "services", "affected_service"):
            for v in _values(value):
                facets["services"].append(v.lower())
                words.append(v)
            continue
        if k == "region":
            words += _values(value)  # the region's name, not the word "region" (every incident has one)
            continue
        if k in ("first_anomaly_at", "detected_at"):
            continue
        if k in ("root_cause_hint", "root_cause", "cause", "suspected_bottleneck"):
            for v in _values(value):
                c = v.strip().lower().replace("-", "_").replace(" ", "_")
                if c in CAUSES:
                    add_cause(c)
                words += re.split(r"[\s_]+", v)
            continue
        if k in ("last_deployment", "last_deploy"):
            deployed_ms = _deploy_ms(value)
            if deployed_ms is None and str(value).strip().lower() in ("", "none", "never", "unknown"):
                continue
            recent = deployed_ms is None or reference_ms is None or 0 <= reference_ms - deployed_ms <= sim.recent_change_s * 1000
            if recent:
                add_cause("bad_deploy")
            continue
        if k in ("config_changes", "config_changed", "recent_config_change"):
            if value is True or (isinstance(value, str) and value.strip().lower() not in ("", "none", "false", "no")):
                add_cause("bad_config")
            continue
        if k in ("feature_flag_changes", "feature_flag_changed"):
            if value is True or (isinstance(value, str) and value.strip().lower() not in ("", "none", "false", "no")):
                add_cause("feature_flag")
            continue
        if k in ("summary", "text", "description", "title", "statement"):
            if isinstance(value, str):
                words += value.split()
            continue
        if k == "signal":
            v = str(value).strip().lower()
            words += terms[v].split() if v in terms else [w for w in _UNIT_SUFFIX.sub("", v).split("_") if w]
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            limit = sim.signal_thresholds.get(k)
            if k != fired and (limit is None and k not in terms or limit is not None and value < limit):
                continue  # a reading within its normal range, or one we have no words for
            if re.search(r"status|code", k):
                words.append(str(int(value)))
        if k in terms:
            words += terms[k].split()
        else:
            words += [w for w in _UNIT_SUFFIX.sub("", k).split("_") if w]
        if isinstance(value, str):
            words += value.split()
    seen: set[str] = set()
    uniq = [w for w in words if w and not (w.lower() in seen or seen.add(w.lower()))]  # type: ignore[func-returns-value]
    for f in facets:
        facets[f] = list(dict.fromkeys(facets[f]))
    return uniq, facets


def _time_ms(value: SignalValue) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return parse_iso_ms(value.strip())
        except ValueError:
            return None
    return None


def _deploy_ms(value: SignalValue) -> int | None:
    """When a deploy happened, from the detector's 'revision 2 at 2026-01-25T14:02:00.000Z'."""
    if isinstance(value, str):
        m = re.search(r"\d{4}-\d{2}-\d{2}T[\d:.]+Z?", value)
        return _time_ms(m[0]) if m else None
    return _time_ms(value)


def _values(value: SignalValue) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def similar_incidents(
    incident_type: str,
    signals: Mapping[str, SignalValue],
    limit: int = 5,
    *,
    data_dir: DataDir | str | os.PathLike[str] | None = None,
    kb: KnowledgeBase | None = None,
    exclude: Iterable[str] = (),
) -> list[SearchHit]:
    """The entries most like an open incident of ``incident_type`` with these ``signals``
    (e.g. ``{"service": "action-handler", "p99_ms": 4200, "root_cause_hint": "bad_deploy"}``).

    Ranking: the text match of the signal words (BM25, the best candidate scaled to 1.0) plus
    fixed weights for the same incident type (less when the entry lists it second), the share of the known causes the entry has, and
    the same service (``[similar]`` in search.toml). So an entry of the incident's type comes
    first whatever the wording, and among those the one with the same cause and service; an
    entry of another type with the same cause and service can still appear (compound incidents
    are filed under their first type). ``exclude`` drops entries by id or incident id.
    """
    base = kb or KnowledgeBase(data_dir)
    base.refresh()
    searcher = base.searcher()
    words, facets = signal_words(incident_type, signals, base)
    builder = QueryBuilder(base.schema, searcher, base.settings)
    boosts = base.settings.fields["symptoms"]
    parsed = ParsedQuery(text=" ".join(words), clauses=tuple(Clause("should", Word(w)) for w in words))
    text_q = builder.build(parsed, boosts)
    schema = base.schema
    facet_qs = [
        tantivy.Query.term_set_query(schema, fld, facets[fld]) for fld in ("types", "causes", "services") if facets[fld]
    ]
    if text_q is None and not facet_qs:
        return []
    excluded: list[tuple[tantivy.Occur, tantivy.Query]] = []
    for ref in exclude:
        bare = ref.strip().lower().removeprefix("urn:uuid:")
        excluded.append((tantivy.Occur.MustNot, tantivy.Query.term_query(schema, "id", ref.strip())))
        excluded.append((tantivy.Occur.MustNot, tantivy.Query.term_query(schema, "keys", bare)))
    sim = base.settings.similar
    pool = max(limit * sim.candidates_per_result, sim.min_candidates)
    fields = [f for f, _ in sorted(boosts.items(), key=lambda kv: -kv[1]) if f not in ("title", "all")]
    # Candidates: the best text matches anywhere, and the best text matches among the entries that
    # share the type, a cause or the service (a facet adds nothing to the score: text only).
    text_part = [(tantivy.Occur.Should, text_q)] if text_q is not None else []
    candidates: dict[str, SearchHit] = {}
    queries = []
    if text_q is not None:
        queries.append(tantivy.Query.boolean_query(text_part + excluded))
    for fq in facet_qs:
        queries.append(tantivy.Query.boolean_query(text_part + [(tantivy.Occur.Must, tantivy.Query.const_score_query(fq, 0.0))] + excluded))
    for q in queries:
        hits, _ = base.run_query(searcher, q, pool, fields)
        for h in hits:
            candidates.setdefault(h.entry_id, h)
    if not candidates:
        return []
    best_text = max(h.score for h in candidates.values()) or 1.0
    types, causes, services = set(facets["types"]), set(facets["causes"]), set(facets["services"])

    def score(h: SearchHit) -> float:
        s = sim.text_weight * h.score / best_text
        if h.incident_types and h.incident_types[0] in types:
            s += sim.type_weight
        elif types & set(h.incident_types):
            s += sim.secondary_type_weight  # a compound incident filed first under another type
        if causes:
            s += sim.cause_weight * len(causes & set(h.causes)) / len(causes)
        if services & {x.lower() for x in h.services}:
            s += sim.service_weight
        return s

    ranked = sorted((replace(h, score=score(h)) for h in candidates.values()), key=lambda h: (-round(h.score, 6), h.entry_id))
    return ranked[:limit]
