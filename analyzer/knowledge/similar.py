"""Past incidents like an open one: the query is built from the incident's type and live signals.

The console shows these next to an open incident and the PIR draft lists them under "Similar
incidents". Signals are whatever the detector knows (service, region, p99, error rate, a
root-cause hint); their names map to words through ``[similar.signal_terms]`` in search.toml.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

import tantivy

from engine.datadir import DataDir

from .entry import CAUSES
from .index import KnowledgeBase, SearchHit
from .query import Clause, ParsedQuery, QueryBuilder, Word, resolve_incident_type

SignalValue = int | float | str | bool | None
_UNIT_SUFFIX = re.compile(r"_(ms|s|pct|bp|ppm|count|total|per_s|per_min|percent|seconds|minutes)$")


def signal_words(incident_type: str, signals: Mapping[str, SignalValue], kb: KnowledgeBase) -> tuple[list[str], dict[str, list[str]]]:
    """The words a query is made of, and the exact facets (types, services, causes) to boost."""
    terms = kb.settings.similar.signal_terms
    words: list[str] = []
    facets: dict[str, list[str]] = {"types": [], "services": [], "causes": []}
    t = resolve_incident_type(incident_type, kb.settings)
    if t is not None:
        facets["types"].append(t)
        words += t.split("_")
    for key, value in signals.items():
        if value is None or value is False:
            continue
        k = key.strip().lower()
        if k in ("service", "services", "affected_service"):
            for v in _values(value):
                facets["services"].append(v.lower())
                words.append(v)
            continue
        if k in ("root_cause_hint", "root_cause", "cause", "suspected_bottleneck"):
            for v in _values(value):
                c = v.strip().lower().replace("-", "_").replace(" ", "_")
                if c in CAUSES:
                    facets["causes"].append(c)
                words += re.split(r"[\s_]+", v)
                if c in terms:
                    words += terms[c].split()
            continue
        if k in ("summary", "text", "description", "title", "statement"):
            if isinstance(value, str):
                words += value.split()
            continue
        if k in terms:
            words += terms[k].split()
        else:
            words += [w for w in _UNIT_SUFFIX.sub("", k).split("_") if w]
        if isinstance(value, str):
            words += value.split()
        elif isinstance(value, int) and not isinstance(value, bool) and re.search(r"status|code", k):
            words.append(str(value))
    seen: set[str] = set()
    uniq = [w for w in words if w and not (w.lower() in seen or seen.add(w.lower()))]  # type: ignore[func-returns-value]
    return uniq, facets


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

    ``exclude`` drops entries by id or incident id (the incident's own entry, once it has one).
    Entries of the same type rank first, but an entry of another type with the same service
    and cause can still appear: compound incidents are filed under their first type.
    """
    base = kb or KnowledgeBase(data_dir)
    base.refresh()
    searcher = base.searcher()
    words, facets = signal_words(incident_type, signals, base)
    builder = QueryBuilder(base.schema, searcher, base.settings)
    boosts = base.settings.fields["symptoms"]
    parsed = ParsedQuery(text=" ".join(words), clauses=tuple(Clause("should", Word(w)) for w in words))
    subs: list[tuple[tantivy.Occur, tantivy.Query]] = []
    text_q = builder.build(parsed, boosts)
    if text_q is not None:
        subs.append((tantivy.Occur.Should, text_q))
    sim = base.settings.similar
    for fld, boost in (("types", sim.type_boost), ("services", sim.service_boost), ("causes", sim.cause_boost)):
        for v in dict.fromkeys(facets[fld]):
            subs.append((tantivy.Occur.Should, tantivy.Query.boost_query(tantivy.Query.term_query(base.schema, fld, v), boost)))
    if not subs:
        return []
    for ref in exclude:
        bare = ref.strip().lower().removeprefix("urn:uuid:")
        subs.append((tantivy.Occur.MustNot, tantivy.Query.term_query(base.schema, "id", ref.strip())))
        subs.append((tantivy.Occur.MustNot, tantivy.Query.term_query(base.schema, "keys", bare)))
    query = tantivy.Query.boolean_query(subs)
    fields = [f for f, _ in sorted(boosts.items(), key=lambda kv: -kv[1]) if f not in ("title", "all")]
    hits, _ = base.run_query(searcher, query, limit, fields)
    return hits
