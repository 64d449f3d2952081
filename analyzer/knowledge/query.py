"""The query language of ``ggen knowledge search``, and its translation into tantivy queries.

What people type at 3 a.m. is mostly plain words, so plain words always work. On top of them:
``"exact phrase"``, ``+required``, ``-excluded``, ``a AND b``, ``a OR b``, ``NOT a``, ``( ... )`` and
the fields ``type:``, ``severity:``/``sev:``, ``service:``, ``cause:``, ``tag:`` and ``id:``, which
filter (they are required unless joined with ``OR`` or negated).
Parsing never raises: a syntax error (unbalanced quote, stray ``AND``, ``:`` or ``(``) makes the
whole text fall back to plain words, with one warning saying what was wrong and where.

The tantivy parser is not used on purpose: it reads ``> 1000`` as a range and ``status:503`` as a
field, both of which on-call engineers type as plain text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Union

import tantivy

from .entry import CAUSES, SEVERITIES
from .settings import SearchSettings

Occur = Literal["should", "must", "must_not"]


@dataclass(frozen=True)
class Word:
    """A word as typed: stemmed against text fields, whole against identifiers, fuzzy if unknown."""

    text: str


@dataclass(frozen=True)
class Phrase:
    """Words that must appear in this order."""

    text: str


@dataclass(frozen=True)
class FieldTerm:
    """An exact facet: ``type:latency_spike``, ``sev:1``, ``service:governor``."""

    field: str
    value: str


@dataclass(frozen=True)
class Group:
    """Parenthesised clauses."""

    clauses: tuple["Clause", ...]


Node = Union[Word, Phrase, FieldTerm, Group]


@dataclass(frozen=True)
class Clause:
    occur: Occur
    node: Node


@dataclass(frozen=True)
class ParsedQuery:
    """The clauses of one query text, and what the parser had to say about it."""

    text: str
    clauses: tuple[Clause, ...]
    warnings: tuple[str, ...] = ()
    fallback: bool = False


class QuerySyntaxError(ValueError):
    def __init__(self, message: str, pos: int) -> None:
        self.message = message
        self.pos = pos
        super().__init__(f"{message} at column {pos + 1}")


FIELD_NAMES = {
    "type": "type",
    "types": "type",
    "severity": "severity",
    "sev": "severity",
    "service": "service",
    "cause": "cause",
    "tag": "tag",
    "id": "id",
}
_FIELD_WORD = re.compile(r"^(?P<field>[A-Za-z]+):(?P<value>.*)$", re.S)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_PLAIN_WORD = re.compile(r'[^\s"()]+')


def echo(text: str, max_chars: int) -> str:
    """``text`` quoted for a warning or a report line, cut to ``max_chars`` with its full length
    said (a pasted stack trace is not echoed back whole; the query log keeps it whole)."""
    if len(text) <= max_chars:
        return repr(text)
    return repr(text[:max_chars]) + f"... ({len(text):,} characters)"


def sanitize(text: str, max_chars: int) -> tuple[str, list[str]]:
    """Make user text safe to search: no control characters or lone surrogates, bounded length."""
    warnings: list[str] = []
    clean = text.encode("utf-8", "replace").decode("utf-8", "replace") if _has_surrogates(text) else text
    clean = _CONTROL.sub(" ", clean)
    if len(clean) > max_chars:
        warnings.append(f"query is {len(clean)} characters long; only the first {max_chars} were searched")
        clean = clean[:max_chars]
    return clean, warnings


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@dataclass
class _Tok:
    kind: Literal["word", "phrase", "lparen", "rparen", "op", "mod"]
    text: str
    pos: int


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QuerySyntaxError('unbalanced quote (")', i)
            toks.append(_Tok("phrase", text[i + 1 : end], i))
            i = end + 1
            continue
        if c in "()":
            toks.append(_Tok("lparen" if c == "(" else "rparen", c, i))
            i += 1
            continue
        if c in "+-":
            # At the start of a token, + and - are modifiers of the next term.
            if i + 1 >= n or text[i + 1].isspace() or text[i + 1] in "+-)":
                raise QuerySyntaxError(f"stray '{c}'", i)
            toks.append(_Tok("mod", c, i))
            i += 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in '"()':
            j += 1
        word = text[i:j]
        if word in ("AND", "OR", "NOT", "&&", "||"):
            toks.append(_Tok("op", {"&&": "AND", "||": "OR"}.get(word, word), i))
        else:
            toks.append(_Tok("word", word, i))
        i = j
    return toks


class _Parser:
    def __init__(self, toks: list[_Tok], settings: SearchSettings) -> None:
        self.toks = toks
        self.i = 0
        self.settings = settings

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def parse_list(self, depth: int, end_pos: int) -> list[Clause]:
        if depth > self.settings.limits.max_depth:
            raise QuerySyntaxError("parentheses nested too deeply", end_pos)
        items: list[Clause | _Tok] = []
        while True:
            t = self.peek()
            if t is None or t.kind == "rparen":
                break
            if t.kind == "op" and t.text in ("AND", "OR"):
                self.take()
                if not items or isinstance(items[-1], _Tok):
                    raise QuerySyntaxError(f"'{t.text}' needs a term before it", t.pos)
                items.append(t)
                continue
            items.append(self.parse_clause(depth))
        if items and isinstance(items[-1], _Tok):
            raise QuerySyntaxError(f"'{items[-1].text}' needs a term after it", items[-1].pos)
        clauses: list[Clause] = [c for c in items if isinstance(c, Clause)]
        # a AND b: both sides become required (an excluded side stays excluded).
        out: list[Clause] = []
        for k, item in enumerate(items):
            if isinstance(item, _Tok):
                continue
            near_and = any(
                isinstance(items[j], _Tok) and items[j].text == "AND"  # type: ignore[union-attr]
                for j in (k - 1, k + 1)
                if 0 <= j < len(items)
            )
            near_or = any(
                isinstance(items[j], _Tok) and items[j].text == "OR"  # type: ignore[union-attr]
                for j in (k - 1, k + 1)
                if 0 <= j < len(items)
            )
            if item.occur == "should" and (near_and or (_is_filter(item.node) and not near_or)):
                # a AND b: both required. A field term (type:, sev:, ...) filters unless ORed.
                item = Clause("must", item.node)
            out.append(item)
        assert len(out) == len(clauses)
        return out

    def parse_clause(self, depth: int) -> Clause:
        t = self.take()
        occur: Occur = "should"
        if t.kind == "mod" or (t.kind == "op" and t.text == "NOT"):
            occur = "must" if t.text == "+" else "must_not"
            nxt = self.peek()
            if nxt is None or nxt.kind in ("rparen", "op", "mod"):
                raise QuerySyntaxError(f"'{t.text}' needs a term after it", t.pos)
            t = self.take()
        if t.kind == "phrase":
            return Clause(occur, Phrase(t.text))
        if t.kind == "lparen":
            inner = self.parse_list(depth + 1, t.pos)
            close = self.peek()
            if close is None or close.kind != "rparen":
                raise QuerySyntaxError("'(' is never closed", t.pos)
            self.take()
            if not inner:
                raise QuerySyntaxError("empty parentheses", t.pos)
            return Clause(occur, Group(tuple(inner)))
        if t.kind == "rparen":
            raise QuerySyntaxError("')' without a matching '('", t.pos)
        if t.kind == "op":
            raise QuerySyntaxError(f"stray '{t.text}'", t.pos)
        return Clause(occur, self.word_node(t))

    def word_node(self, t: _Tok) -> Node:
        word = t.text
        if word.startswith(":") or word == ":":
            raise QuerySyntaxError("stray ':'", t.pos)
        m = _FIELD_WORD.match(word)
        if m and m["field"].lower() in FIELD_NAMES:
            name = FIELD_NAMES[m["field"].lower()]
            value = m["value"]
            if not value:
                nxt = self.peek()
                if nxt is not None and nxt.kind == "phrase":
                    value = self.take().text
                else:
                    raise QuerySyntaxError(f"'{m['field']}:' needs a value", t.pos)
            return FieldTerm(name, normalize_field_value(name, value, self.settings, t.pos))
        if m and not m["value"]:
            # "error:" as typed in prose is a word, not a field.
            return Word(m["field"])
        return Word(word)


def _is_filter(node: Node) -> bool:
    """Field terms, and groups made only of field terms, narrow the results rather than rank them."""
    if isinstance(node, FieldTerm):
        return True
    return isinstance(node, Group) and all(_is_filter(c.node) for c in node.clauses)


def normalize_field_value(name: str, value: str, settings: SearchSettings, pos: int = 0) -> str:
    """Canonical value of a field term; raises QuerySyntaxError for values no entry can have."""
    v = value.strip()
    if name == "type":
        t = resolve_incident_type(v, settings)
        if t is None:
            raise QuerySyntaxError(f"unknown incident type {echo(v, settings.limits.echo_chars)}", pos)
        return t
    if name == "severity":
        s = resolve_severity(v)
        if s is None:
            raise QuerySyntaxError(f"unknown severity {echo(v, settings.limits.echo_chars)} (use Sev1..Sev4)", pos)
        return s
    if name == "cause":
        c = v.lower().replace("-", "_").replace(" ", "_")
        if c not in CAUSES:
            raise QuerySyntaxError(f"unknown root cause {echo(v, settings.limits.echo_chars)}", pos)
        return c
    return v.lower() if name in ("service", "tag") else v


def resolve_incident_type(value: str, settings: SearchSettings) -> str | None:
    """Canonical incident type for a name or alias (``latency`` -> ``latency_spike``)."""
    v = value.strip().lower().replace("-", "_").replace(" ", "_")
    if v in settings.type_aliases.values():
        return v
    return settings.type_aliases.get(v)


def resolve_severity(value: str) -> str | None:
    """``1``, ``sev1``, ``SEV1`` and ``Sev1`` all mean Sev1."""
    v = value.strip().lower().removeprefix("sev").strip()
    if v in ("1", "2", "3", "4"):
        return f"Sev{v}"
    return None if f"Sev{v}" not in SEVERITIES else f"Sev{v}"


def parse_query(text: str, settings: SearchSettings) -> ParsedQuery:
    """Parse user text. Never raises: on a syntax error, every word becomes a plain optional term."""
    clean, warnings = sanitize(text, settings.limits.max_chars)
    try:
        parser = _Parser(_lex(clean), settings)
        clauses = parser.parse_list(0, 0)
        extra = parser.peek()
        if extra is not None:
            raise QuerySyntaxError("')' without a matching '('", extra.pos)
        fallback = False
    except QuerySyntaxError as exc:
        warnings.append(f"query syntax: {exc.message} at column {exc.pos + 1}; searched for the plain words instead")
        clauses = plain_clauses(clean)
        fallback = True
    limit = settings.limits.max_clauses
    if _count(clauses) > limit:
        warnings.append(f"query has more than {limit} terms; only the first {limit} were searched")
        clauses = _truncate(clauses, limit)
    return ParsedQuery(text=clean, clauses=tuple(clauses), warnings=tuple(warnings), fallback=fallback)


def plain_clauses(text: str) -> list[Clause]:
    """Every word of ``text`` as an optional term: the fallback for text that does not parse."""
    out: list[Clause] = []
    for w in _PLAIN_WORD.findall(text):
        w = w.lstrip("+-:")
        if not w or w in ("AND", "OR", "NOT", "&&", "||"):
            continue
        out.append(Clause("should", Word(w)))
    return out


def _count(clauses: list[Clause] | tuple[Clause, ...]) -> int:
    return sum(_count(c.node.clauses) if isinstance(c.node, Group) else 1 for c in clauses)


def _truncate(clauses: list[Clause], limit: int) -> list[Clause]:
    out: list[Clause] = []
    for c in clauses:
        if _count(out) >= limit:
            break
        if isinstance(c.node, Group):
            room = limit - _count(out)
            inner = _truncate(list(c.node.clauses), room)
            if inner:
                out.append(Clause(c.occur, Group(tuple(inner))))
        else:
            out.append(c)
    return out


# --- identifiers and numbers -------------------------------------------------------------------

_NUMERIC_PLURAL = re.compile(r"^(\d+(?:xx)?)s$")
# Words joined by _ . / : or - (at least one joint): custom.governor/queue_depth, us-west1, idx_user_account.
_IDENT = re.compile(r"[A-Za-z0-9]++(?:[_./:\-]++[A-Za-z0-9]++)+")  # possessive: no backtracking
_SEGMENT_SPLIT = re.compile(r"[/:]+")
# A number not glued to a word, path or version on its left: 3,847 / 4.2 / 503 (from "503s").
# The first digit is matched before the look-behind so the scan skips non-digits quickly.
_NUMBER = re.compile(r"\d(?<![\w.,:/-]\d)(?:\d{0,2}(?:,\d{3})++|\d*+(?:\.\d++)?)(?![\d])")


def key_tokens(text: str, *, segments: bool = True) -> list[str]:
    """Identifiers (``custom.governor/queue_depth``, ``request_latency_p99_ms``, ``us-west1``) whole
    and lowercased, their ``/``- and ``:``-separated segments, and numbers without thousands
    separators (``3,847`` -> ``3847``). The text tokenizer splits these into parts; this field keeps
    them whole so that both the whole and the parts match."""
    out: list[str] = []
    for m in _IDENT.finditer(text):
        tok = m.group(0).lower()
        if _NUMBER.fullmatch(tok):
            continue
        out.append(tok)
        if segments:
            for seg in _SEGMENT_SPLIT.split(tok):
                seg = seg.strip("._-")
                if seg and seg != tok and any(ch in seg for ch in "_.-"):
                    out.append(seg)
    for m in _NUMBER.finditer(text):
        out.append(m.group(0).replace(",", ""))
    seen: set[str] = set()
    uniq = []
    for k in out:
        if k not in seen:
            seen.add(k)
            uniq.append(k)
    return uniq


# --- building tantivy queries ------------------------------------------------------------------


@dataclass
class BuildNotes:
    """What the builder did that the user should know about."""

    corrections: dict[str, list[str]] = field(default_factory=dict)
    fuzzy: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


class QueryBuilder:
    """Turns parsed clauses into tantivy queries over one searcher's index."""

    def __init__(self, schema: tantivy.Schema, searcher: tantivy.Searcher, settings: SearchSettings) -> None:
        self.schema = schema
        self.searcher = searcher
        self.settings = settings
        self.stem = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(
            tantivy.Filter.remove_long(40)
        ).filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.stemmer("english")).build()
        self.plain = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(
            tantivy.Filter.remove_long(40)
        ).filter(tantivy.Filter.lowercase()).build()
        self.notes = BuildNotes()
        self._stop = set(settings.stopwords)
        self._df_cache: dict[str, int] = {}

    def build(self, parsed: ParsedQuery, boosts: dict[str, float]) -> tantivy.Query | None:
        return self._clauses(parsed.clauses, boosts)

    def _clauses(self, clauses: tuple[Clause, ...], boosts: dict[str, float]) -> tantivy.Query | None:
        subs: list[tuple[tantivy.Occur, tantivy.Query]] = []
        for c in clauses:
            if c.occur == "should" and isinstance(c.node, Word) and c.node.text.lower() in self._stop:
                continue
            q = self._node(c.node, boosts)
            if q is None:
                if c.occur != "must_not":
                    label = c.node.text if isinstance(c.node, (Word, Phrase)) else str(c.node)
                    self.notes.dropped.append(label)
                if c.occur == "must":
                    return tantivy.Query.empty_query()
                continue
            occur = {"should": tantivy.Occur.Should, "must": tantivy.Occur.Must, "must_not": tantivy.Occur.MustNot}[c.occur]
            subs.append((occur, q))
        subs += [(tantivy.Occur.Should, q) for q in self._proximity(clauses, boosts)]
        if not subs:
            return None
        if all(o == tantivy.Occur.MustNot for o, _ in subs):
            subs.append((tantivy.Occur.Must, tantivy.Query.all_query()))
        if len(subs) == 1 and subs[0][0] != tantivy.Occur.MustNot:
            return subs[0][1]
        return tantivy.Query.boolean_query(subs)

    def _proximity(self, clauses: tuple[Clause, ...], boosts: dict[str, float]) -> list[tantivy.Query]:
        """Adjacent typed words that also appear next to each other in an entry ("queue depth",
        "failed back", "health check") earn a bonus: a phrase query per pair, as edismax's pf2."""
        if self.settings.proximity_boost <= 0:
            return []
        words = [
            c.node.text
            for c in clauses
            if c.occur == "should" and isinstance(c.node, Word) and c.node.text.lower() not in self._stop
        ]
        out: list[tantivy.Query] = []
        for a, b in zip(words, words[1:]):
            parts = [_NUMERIC_PLURAL.sub(r"\1", p) for p in self.stem.analyze(a) + self.stem.analyze(b)]
            if len(parts) < 2 or len(parts) > 8:
                continue
            per_field = [
                tantivy.Query.boost_query(self._text_query(parts, fld, self.settings.proximity_slop), w)
                for fld, w in boosts.items()
            ]
            out.append(
                tantivy.Query.boost_query(
                    tantivy.Query.disjunction_max_query(per_field, tie_breaker=self.settings.tie_breaker),
                    self.settings.proximity_boost,
                )
            )
        return out

    def _node(self, node: Node, boosts: dict[str, float]) -> tantivy.Query | None:
        if isinstance(node, Word):
            return self.word(node.text, boosts)
        if isinstance(node, Phrase):
            return self.phrase(node.text, boosts)
        if isinstance(node, FieldTerm):
            return self.field_term(node)
        return self._clauses(node.clauses, boosts)

    def _df(self, term: str) -> int:
        if term not in self._df_cache:
            self._df_cache[term] = self.searcher.doc_freq("words", term)
        return self._df_cache[term]

    def _text_query(self, parts: list[str], fld: str, slop: int) -> tantivy.Query:
        if len(parts) == 1:
            return tantivy.Query.term_query(self.schema, fld, parts[0])
        return tantivy.Query.phrase_query(self.schema, fld, parts, slop)

    def word(self, text: str, boosts: dict[str, float], *, expand: bool = True) -> tantivy.Query | None:
        """One typed word (or a synonym expansion) against every field it can match."""
        # "503s", "429s": the stemmer leaves a plural after digits alone; people mean the code.
        parts = [_NUMERIC_PLURAL.sub(r"\1", p) for p in self.stem.analyze(text)]
        subs: list[tantivy.Query] = []
        if parts:
            for fld, b in boosts.items():
                subs.append(tantivy.Query.boost_query(self._text_query(parts, fld, 0), b))
        # Identifiers and numbers typed whole are extra evidence on top of the text match (added,
        # not max-ed): an entry that names custom.governor/queue_depth beats one that says "queue depth".
        exact = [
            tantivy.Query.boost_query(tantivy.Query.term_query(self.schema, "keys", k), self.settings.keys_boost)
            for k in key_tokens(text, segments=False)
        ]
        if expand:
            fz = self.settings.fuzzy
            for raw in self.plain.analyze(text):
                if len(raw) < fz.min_chars or not raw.isalpha() or raw in self._stop or self._df(raw) > 0:
                    continue
                if raw in self.settings.synonyms:
                    continue
                dist = fz.distance_long if len(raw) >= fz.long_from_chars else fz.distance_short
                if dist <= 0:
                    continue
                self.notes.fuzzy.append(raw)
                subs.append(
                    tantivy.Query.boost_query(
                        tantivy.Query.fuzzy_term_query(self.schema, "words", raw, distance=dist, transposition_cost_one=True),
                        fz.boost,
                    )
                )
                fixes = self.corrections(raw, dist)
                if fixes:
                    self.notes.corrections[raw] = fixes
                for fix in fixes:
                    q = self.word(fix, boosts, expand=False)
                    if q is not None:
                        subs.append(tantivy.Query.boost_query(q, fz.correction_boost))
            for alt in self.settings.synonyms.get(text.lower(), []):
                q = self.word(alt, boosts, expand=False)
                if q is not None:
                    subs.append(tantivy.Query.boost_query(q, self.settings.synonym_boost))
        if not subs and not exact:
            return None
        best = None
        if len(subs) == 1:
            best = subs[0]
        elif subs:
            best = tantivy.Query.disjunction_max_query(subs, tie_breaker=self.settings.tie_breaker)
        if not exact:
            return best
        parts_q = ([best] if best is not None else []) + exact
        if len(parts_q) == 1:
            return parts_q[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in parts_q])

    def phrase(self, text: str, boosts: dict[str, float]) -> tantivy.Query | None:
        """Words in order (with the configured slop) in any boosted text field."""
        parts = self.stem.analyze(text)
        if not parts:
            return None
        if len(parts) == 1:
            return self.word(text, boosts)
        subs = [
            tantivy.Query.boost_query(self._text_query(parts, fld, self.settings.phrase_slop), b)
            for fld, b in boosts.items()
        ]
        return tantivy.Query.disjunction_max_query(subs, tie_breaker=self.settings.tie_breaker)

    def field_term(self, node: FieldTerm) -> tantivy.Query:
        s = self.schema
        if node.field == "type":
            return tantivy.Query.term_query(s, "types", node.value)
        if node.field == "severity":
            return tantivy.Query.term_query(s, "severity", int(node.value[3:]))
        if node.field == "service":
            return tantivy.Query.term_query(s, "services", node.value)
        if node.field == "cause":
            return tantivy.Query.term_query(s, "causes", node.value)
        if node.field == "tag":
            return tantivy.Query.term_query(s, "keys", node.value.lower())
        return tantivy.Query.term_query(s, "id", node.value)

    def corrections(self, raw: str, dist: int) -> list[str]:
        """Known words within ``dist`` edits of ``raw`` that share its first letter (for highlighting
        and for telling the user what a typo was read as); the fuzzy query itself needs no prefix."""
        try:
            candidates = self.searcher.terms_with_prefix("words", raw[0], limit=5000)
        except Exception:
            return []
        scored: list[tuple[int, int, str]] = []
        for term, df in candidates:
            if abs(len(term) - len(raw)) > dist or term.isdigit():
                continue
            d = edit_distance(raw, term, dist)
            if d <= dist:
                scored.append((d, -df, term))
        scored.sort()
        return [t for _, _, t in scored[:3]]


def edit_distance(a: str, b: str, cap: int) -> int:
    """Damerau-Levenshtein distance (adjacent transpositions count once), stopping early above ``cap``."""
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if abs(la - lb) > cap:
        return cap + 1
    prev2: list[int] | None = None
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        best = cur[0]
        for j in range(1, lb + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > cap:
            return cap + 1
        prev2, prev = prev, cur
    return prev[lb]
