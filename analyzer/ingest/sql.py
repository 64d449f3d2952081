"""SQL that parses log lines inside DuckDB: one scan of the file, no per-line Python.

Every line of a file becomes exactly one row of the ``INSERT INTO events`` that these builders
produce. A line that parses becomes an event; a line that does not is staged in the same
statement with ``ts`` NULL and a tag in ``raw_level`` (``\\x01R`` reject, ``\\x01S`` a record start
that was rejected, ``\\x01C`` a continuation candidate, ``\\x01M`` a line the sanitizer already
rejected), and :mod:`analyzer.ingest.pipeline` moves those few rows to ``rejects`` or onto the
record above before the file is recorded. So the accounting identity (lines = events +
continuations + rejects) holds by construction. Rows are appended in file order, so the line
number of each is its row id minus the first one (set by one UPDATE once the rows are committed).

Speed notes that shaped the SQL (measured per 1M lines, bench/ingest_bench.py): what every row
needs is computed in subqueries, not inside a CASE of the outer projection (a third cheaper);
anything that can raise on a bad line is written once, inside a CASE (DuckDB hoists repeated
expressions out of CASE and would run it on every line); regex groups are read at most four at a
time for one-pass patterns (RE2's fastest engine).
"""
from __future__ import annotations

from analyzer.ingest.formats import LEVELS, FieldAliases, LevelVocabulary, TextFormat

# Separator no sane log line contains. The pre-scan checks each file for it (and for lone
# carriage returns) and sends such files through the sanitizing slow path.
LINE_DELIM = "\x01\x02\x03\x04"
# A line the sanitizer already rejected; real lines never contain it (the pre-scan checks).
MARKER = "\x01\x02\x03"
TAG_REJECT = "\x01R"
TAG_START_REJECT = "\x01S"
TAG_CONT = "\x01C"
TAG_MARKER = "\x01M"  # a marker line: its reject was recorded by the sanitizer
RAW_LIMIT = 2048
MAX_LINE_BYTES = 1 << 20
# DuckDB's CSV reader buffer per thread: small enough to keep memory low, larger than a line.
READ_BUFFER_BYTES = 4 * MAX_LINE_BYTES
TS_MIN = "1970-01-01 00:00:00+00"
TS_MAX = "2200-01-01 00:00:00+00"
EVENT_COLUMNS = "ts, level, raw_level, service, host, message, trace_id, span_id, request_id, attrs, source_file, source_line"


def lit(value: str) -> str:
    """A SQL string literal (single quotes doubled; control characters are fine inside)."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def read_lines(path: str, compression: str = "none") -> str:
    """``read_csv`` set up to return each line of ``path`` whole, as column ``line`` (NULL when blank)."""
    return (
        f"read_csv({lit(path)}, columns={{'line': 'VARCHAR'}}, delim={lit(LINE_DELIM)}, quote='', escape='', "
        f"header=false, auto_detect=false, strict_mode=false, max_line_size={MAX_LINE_BYTES + 4096}, "
        f"buffer_size={READ_BUFFER_BYTES}, compression={lit(compression)})"
    )


# A layered expression: select-list items for subqueries stacked innermost first, then the final
# expression over their columns. Anything used more than once is computed once in a layer: DuckDB
# hoists a repeated expression out of a CASE (or a COALESCE) and runs it on every row.
Layered = tuple[list[list[str]], str]


def stack(inner: str, layers: list[list[str]]) -> str:
    """``inner`` (a query) under one ``SELECT *, ...`` per layer of select items."""
    for items in layers:
        if items:
            inner = f"SELECT *, {', '.join(items)} FROM ({inner})"
    return inner


def _level_word(raw: str, vocab: LevelVocabulary) -> str:
    pairs = [(w.lower(), level) for level in LEVELS for w in vocab.words.get(level, [])]  # type: ignore[call-overload]
    if not pairs:
        return "CAST(NULL AS VARCHAR)"
    # One lookup in a constant map (cheaper than a chain of IN lists).
    return "MAP {" + ", ".join(f"{lit(w)}: '{level}'" for w, level in pairs) + f"}}[lower({raw})]"


def level_or_default(raw: str, vocab: LevelVocabulary, numeric: bool = True) -> Layered:
    """Normalize the level text ``raw`` (a column) to TRACE..FATAL, the default when unknown or
    missing. Level words first; numbers (pino, bunyan) only for what the words do not know."""
    word = _level_word(raw, vocab)
    if not numeric:
        return [], f"coalesce({word}, '{vocab.default}')"
    thresholds = sorted(vocab.numeric_min.items(), key=lambda kv: -kv[1])
    inner = " ".join(f"WHEN _lvl_num >= {v} THEN '{lvl}'" for lvl, v in thresholds)
    layers = [[f"{word} AS _lvl_word"], [f"CASE WHEN _lvl_word IS NULL THEN TRY_CAST({raw} AS DOUBLE) END AS _lvl_num"]]
    return layers, f"coalesce(_lvl_word, CASE {inner} END, '{vocab.default}')"


def epoch_or_iso_ts(text: str) -> Layered:
    """A TIMESTAMPTZ from the text column ``text``: ISO-8601 (any fraction and offset, a comma
    before the fraction too) or an epoch number (s/ms/us/ns told apart by magnitude).

    Strings without an offset are read in the session time zone, which the pipeline sets to the
    zone given by ``--tz`` (UTC by default). Epoch numbers are always UTC. The common case (ISO
    with a dot) is one cast; numbers and comma fractions are tried only for what is left.
    """
    layers = [
        [f"TRY_CAST({text} AS TIMESTAMPTZ) AS _ts_iso"],
        [f"CASE WHEN _ts_iso IS NULL THEN TRY_CAST({text} AS DOUBLE) END AS _ts_num"],
        [f"CASE WHEN abs(_ts_num) >= 1e17 THEN TRY_CAST({text} AS HUGEINT) END AS _ts_big"],
    ]
    final = (
        f"coalesce(_ts_iso, CASE WHEN {text} IS NULL THEN NULL "
        f"WHEN _ts_num IS NULL THEN TRY_CAST(replace({text}, ',', '.') AS TIMESTAMPTZ) "
        f"WHEN abs(_ts_num) < 1e11 THEN to_timestamp(_ts_num) "
        f"WHEN abs(_ts_num) < 1e14 THEN timezone('UTC', make_timestamp(CAST(round(_ts_num * 1000) AS BIGINT))) "
        f"WHEN abs(_ts_num) < 1e17 THEN timezone('UTC', make_timestamp(CAST(_ts_num AS BIGINT))) "
        f"WHEN _ts_big IS NOT NULL AND abs(_ts_big) < 1e20 THEN timezone('UTC', make_timestamp(CAST(_ts_big // 1000 AS BIGINT))) "
        f"END)"
    )
    return layers, final


def ts_reason(raw_ts: str, ts: str) -> str:
    """The reject reason for a record whose timestamp is missing, unparseable or impossible."""
    return (
        f"CASE WHEN {raw_ts} IS NULL OR {raw_ts} = '' THEN 'no timestamp' "
        f"WHEN {ts} IS NULL THEN 'unparseable timestamp: ' || left({raw_ts}, 80) "
        f"ELSE 'timestamp out of range (1970..2200): ' || left({raw_ts}, 80) END"
    )


def ts_ok(ts: str) -> str:
    return f"({ts} IS NOT NULL AND {ts} >= TIMESTAMPTZ '{TS_MIN}' AND {ts} < TIMESTAMPTZ '{TS_MAX}')"


def json_path(*keys: str) -> str:
    """A JSONPath literal (``$."a"."b"``) naming ``keys`` one level below the other."""
    return lit("$." + ".".join(ident(k) for k in keys))


class JsonFields:
    """Reads aliased fields out of ``v`` (``json_transform`` of ``line`` into VARCHAR members).

    ``json_transform`` hands objects and arrays over as JSON text, so a value that starts with
    ``{`` or ``[`` is ambiguous ("[main] started" is a message); only those rare values pay for
    asking the document for the value's type. Every expression that looks into a document again
    (``json_type``, ``json_extract_string``) is written exactly once, in its own subquery layer,
    inside a CASE that reaches it only for the rows that need it: written twice, DuckDB's
    common-subexpression pass would hoist it out of the CASE and run it on every row, invalid
    lines included, where it raises.
    """

    def __init__(self, aliases: list[str], var: str = "v", doc: str = "line") -> None:
        self.var, self.doc = var, doc
        self.keys: list[str] = []  # top-level keys to read (struct members), first spelling kept
        low: set[str] = set()
        for a in aliases:
            for k in (a, a.split(".")[0]):
                if k.lower() not in low:
                    low.add(k.lower())
                    self.keys.append(k)
        self._col = {k: i for i, k in enumerate(self.keys)}
        self._nested = {a: i for i, a in enumerate(dict.fromkeys(a for a in aliases if "." in a))}

    def member(self, key: str) -> str:
        """The raw VARCHAR member for top-level ``key``."""
        return f"{self.var}.{ident(self._spelling(key))}"

    def text(self, key: str) -> str:
        """The column holding ``key``'s value as text when it is a non-empty scalar, else NULL."""
        return f"t{self._col[self._spelling(key)]}"

    def _spelling(self, key: str) -> str:
        for k in self.keys:
            if k.lower() == key.lower():
                return k
        raise KeyError(key)

    def _parts(self, alias: str) -> tuple[str, list[str]]:
        head, _, rest = alias.partition(".")
        return self._spelling(head), rest.split(".")

    def wrap(self, inner: str) -> str:
        """``inner`` (a query with ``v`` and the document) under the layers that add the ``t``
        (top-level text), ``y`` (type of an ambiguous value) and ``n`` (nested text) columns."""
        layers = [
            # y: the JSON type of values that look like an object or array
            [f"CASE WHEN prefix({self.member(k)}, '{{') OR prefix({self.member(k)}, '[') THEN json_type({self.doc}, {json_path(k)}) END AS y{i}"
             for k, i in self._col.items()],
            # t: scalar text; j: the text under a nested path of an object
            [f"CASE WHEN {self.member(k)} = '' OR y{i} IN ('OBJECT', 'ARRAY') THEN NULL ELSE {self.member(k)} END AS t{i}" for k, i in self._col.items()]
            + [f"CASE WHEN y{self._col[self._parts(a)[0]]} = 'OBJECT' THEN json_extract_string({self.member(self._parts(a)[0])}, {json_path(*self._parts(a)[1])}) END AS j{i}"
               for a, i in self._nested.items()],
            [f"CASE WHEN prefix(j{i}, '{{') OR prefix(j{i}, '[') THEN json_type({self.member(self._parts(a)[0])}, {json_path(*self._parts(a)[1])}) END AS yn{i}"
             for a, i in self._nested.items()],
            [f"CASE WHEN j{i} = '' OR yn{i} IN ('OBJECT', 'ARRAY') THEN NULL ELSE j{i} END AS n{i}" for a, i in self._nested.items()],
        ]
        out = inner
        for sel in layers:
            if sel:
                out = f"SELECT *, {', '.join(sel)} FROM ({out})"
        return out

    def sources(self, aliases: list[str]) -> list[tuple[str, str | None]]:
        """``(column, literal key or None)`` in the order values are taken from ``aliases``."""
        out: list[tuple[str, str | None]] = []
        for a in aliases:
            out.append((self.text(a), a))
            if a in self._nested:
                out.append((f"n{self._nested[a]}", None))
        return out

    def value(self, aliases: list[str]) -> str:
        """The first non-empty scalar among ``aliases`` (literal key, then nested path)."""
        cols = list(dict.fromkeys(c for c, _ in self.sources(aliases)))
        if not cols:
            return "CAST(NULL AS VARCHAR)"
        return cols[0] if len(cols) == 1 else f"coalesce({', '.join(cols)})"

    def used_patch(self, aliases: list[str]) -> str:
        """A merge-patch member (``"key":null``) that removes the literal top-level key which
        supplied the value, or NULL when none did or it came from a nested path (which stays)."""
        import json as _json

        whens = [f"WHEN {c} IS NOT NULL THEN {lit(_json.dumps(k) + ':null') if k else 'NULL'}" for c, k in self.sources(aliases)]
        return f"CASE {' '.join(whens)} END" if whens else "NULL"

    def object_at(self, alias: str) -> str:
        """The JSON object stored under ``alias`` (literal key, else nested path), or NULL."""
        i = self._col[self._spelling(alias)]
        literal = f"CASE WHEN y{i} = 'OBJECT' THEN CAST({self.member(alias)} AS JSON) END"
        if alias not in self._nested:
            return literal
        j = self._nested[alias]
        return f"coalesce({literal}, CASE WHEN yn{j} = 'OBJECT' THEN CAST(j{j} AS JSON) END)"


def json_struct(fields: FieldAliases, kind: str = "events") -> dict[str, str]:
    """The ``json_transform`` structure: every top-level key that an alias may need, as VARCHAR."""
    names = fields.all_keys() if kind == "events" else _metric_keys(fields)
    return {k: "VARCHAR" for k in names}


def _metric_keys(fields: FieldAliases) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for aliases in (fields.ts, fields.service, fields.host, fields.metric, fields.value, fields.labels):
        for a in aliases:
            for k in (a, a.split(".")[0]):
                if k.lower() not in seen:
                    seen.add(k.lower())
                    out.append(k)
    return out


def narrow(aliases: list[str], present: set[str] | None) -> list[str]:
    """The aliases whose key (or, for a dotted alias, whose first part) occurs in ``present``
    (top-level keys seen in the file); all of them when ``present`` is None."""
    if present is None:
        return aliases
    low = {k.lower() for k in present}
    return [a for a in aliases if a.lower() in low or a.split(".")[0].lower() in low]


EVENT_FIELD_ORDER = ("ts", "level", "message", "service", "host", "trace_id", "span_id", "request_id")


def jsonl_events_sql(
    source: str,
    source_file: str,
    fields: FieldAliases,
    vocab: LevelVocabulary,
    service: str | None,
    present: set[str] | None = None,
    strict: bool = False,
) -> str:
    """``INSERT INTO events`` for a JSON Lines file (one object per line).

    ``strict`` parses without ``try()``, which costs a tenth of the statement: for a file whose
    sampled lines are all JSON objects. A line that is not makes the statement fail, and the
    caller runs it again without ``strict``.

    ``present`` narrows the aliases to the keys sampled from the file: evaluating sixty aliases
    per line costs more than parsing it. Keys outside the sample still land in ``attrs``, and
    lines whose timestamp hides under an unsampled alias get a second pass with every alias.

    ``attrs`` is the record without the literal keys whose values became columns (nested
    sources stay): rebuilt from the raw JSON of the other sampled keys when the line holds
    nothing else, else merged with a patch naming the keys that were used.
    """
    import json as _json

    ef = {k: narrow(v, present) for k, v in fields.event_fields().items()}
    rd = JsonFields([a for f in EVENT_FIELD_ORDER for a in ef[f]])
    keys = rd.keys
    # Sampled keys that no column uses are read as raw JSON, to rebuild attrs without a reparse.
    present_low = {k.lower() for k in present} if present is not None else set()
    taken = {k.lower() for k in keys}
    extra: list[str] = []
    if present is not None and len(present_low) == len(present):
        extra = sorted(k for k in present if k.lower() not in taken)
    struct = {k: "VARCHAR" for k in keys} | {k: "JSON" for k in extra}
    struct_lit = lit(_json.dumps(struct or {"ts": "VARCHAR"}))

    svc = f"coalesce(service_raw, {lit(service)})" if service else "service_raw"
    # The patch that takes out of the record the keys whose values became columns.
    patch = "'{' || concat_ws(',', " + ", ".join(rd.used_patch(ef[f]) for f in EVENT_FIELD_ORDER) + ") || '}'"
    # Nearly every line of a real file is made only of sampled keys, with each column filled from
    # its field's first sampled alias: its attrs are the other sampled keys, rebuilt from the raw
    # JSON json_transform already holds. json_keys counts the line's keys (duplicates and keys
    # with a null value included), so a line with anything else takes the exact merge instead.
    fast = "false"
    if present is not None and all(not ef[f] or ef[f][0].lower() in present_low for f in EVENT_FIELD_ORDER):
        firsts = [ef[f][0] for f in EVENT_FIELD_ORDER if ef[f]]
        conds = [f"({rd.text(ef[f][0])} IS NOT NULL OR {rd.member(ef[f][0])} IS NULL)" for f in EVENT_FIELD_ORDER if ef[f]]
        conds += [f"{rd.member(k)} IS NULL" for k in keys if k not in firsts]
        count = " + ".join(f"CAST(v.{ident(k)} IS NOT NULL AS INTEGER)" for k in [*keys, *extra]) or "0"
        fast = " AND ".join([*conds, f"nk = {count}"])
    # json_object builds the usual case (every sampled extra key there) as JSON, with no text to
    # validate on its way into the column; a line missing some gets the members concatenated.
    members = ", ".join(f"CASE WHEN v.{ident(k)} IS NOT NULL THEN {lit(_json.dumps(k) + ':')} || v.{ident(k)} END" for k in extra)
    if fast == "false" or not extra:
        fast_attrs = "NULL"
    else:
        every = " AND ".join(f"v.{ident(k)} IS NOT NULL" for k in extra)
        obj = "json_object(" + ", ".join(f"{lit(k)}, v.{ident(k)}" for k in extra) + ")"
        fast_attrs = f"CASE WHEN fast AND {every} THEN {obj} WHEN fast THEN CAST(nullif('{{' || concat_ws(',', {members}) || '}}', '{{}}') AS JSON) END"
    reason = f"""CASE
      WHEN line = {lit(MARKER)} THEN '{TAG_MARKER}'
      WHEN line IS NULL OR trim(line) = '' THEN '{TAG_REJECT}empty line'
      WHEN v IS NULL OR NOT json_valid(line) THEN '{TAG_REJECT}invalid JSON'
      WHEN json_type(line) <> 'OBJECT' THEN '{TAG_REJECT}JSON value is not an object'
      ELSE '{TAG_REJECT}' || {ts_reason('ts_raw', 'ts_any')} END"""
    transform = f"json_transform(line, {struct_lit})" if strict else f"try(json_transform(line, {struct_lit}))"
    parsed = rd.wrap(f"SELECT n, line, CASE WHEN line IS NOT NULL AND line <> {lit(MARKER)} THEN {transform} END AS v FROM {source}")
    columns = {"ts_raw": "ts", "raw_level": "level", "service_raw": "service", "host": "host", "message": "message",
               "trace_id": "trace_id", "span_id": "span_id", "request_id": "request_id"}
    values = (
        "SELECT n, line, v, "
        + ", ".join(f"{rd.value(ef[f])} AS {name}" for name, f in columns.items())
        + f", * EXCLUDE (n, line, v) FROM ({parsed})"
    )
    ts_layers, ts_final = epoch_or_iso_ts("ts_raw")
    level_layers, level_final = level_or_default("raw_level", vocab)
    # Only ts, level, raw_level and message matter for a rejected line (the pipeline moves it to
    # rejects by its NULL ts, with the reason in raw_level and the line in message); the merge
    # and the reasons are computed only for the rows that need them (CASE evaluates lazily).
    # What every row needs is computed in the subqueries: the same expression costs a third more
    # inside a CASE of the outer projection.
    return f"""
INSERT INTO events ({EVENT_COLUMNS})
SELECT
  CASE WHEN ok THEN ts_any END,
  CASE WHEN ok THEN level END,
  CASE WHEN ok THEN raw_level ELSE {reason} END,
  {svc}, host,
  CASE WHEN ok THEN message ELSE coalesce(line, '') END,
  trace_id, span_id, request_id,
  CASE WHEN ok THEN CASE WHEN fast THEN fast_attrs ELSE nullif(json_merge_patch(line, {patch}), '{{}}') END END,
  {lit(source_file)},
  n
FROM (
  SELECT *, {ts_ok('ts_any')} AS ok, {fast_attrs} AS fast_attrs
  FROM (
    SELECT *, coalesce({fast}, false) AS fast
    FROM (
    SELECT *, {ts_final} AS ts_any, {level_final} AS level,
      {"CASE WHEN v IS NOT NULL THEN len(json_keys(line)) END" if fast != "false" else "NULL"} AS nk
    FROM ({stack(values, [*ts_layers, *level_layers])})
    )
  )
)
"""


def text_events_sql(
    source: str,
    source_file: str,
    fmt: TextFormat,
    vocab: LevelVocabulary,
    service: str | None,
    ref_year: int,
    ref_ts: str,
) -> str:
    """``INSERT INTO events`` for a plain-text file read through a declarative format."""
    import json as _json

    names = fmt.group_names
    alias = dict(fmt.group_alias)
    # RE2 pays for every byte it captures: when the pattern ends in a catch-all message group,
    # match only the head and take the message as the rest of the line (same result, less work).
    regex, extract = fmt.regex, names
    tail = "(?P<message>.*)$"
    head = regex.endswith(tail) and regex.count("(?P<message>") == 1 and "_head" not in names
    if head:
        regex = "^(?P<_head>" + regex[1 : -len(tail)] + ")"
        extract = ["_head", *[g for g in names if g != "message"]]
    # RE2 reads captures with its fast one-pass engine only when at most four groups are asked
    # for; with more it falls back to a backtracking one, about twice as slow per line. So the
    # groups are read four at a time, each batch by the same pattern with the others made
    # non-capturing (which does not change what matches).
    size = CAPTURES_PER_MATCH if fmt.one_pass else len(extract)
    batches = [extract[i : i + size] for i in range(0, len(extract), size)]
    holder = {g: f"m{b}" for b, batch in enumerate(batches) for g in batch}

    def grp(g: str) -> str:
        return f"{holder[g]}.{ident(g)}"

    def group(field: str) -> str:
        srcs = [g for g in names if g == field or alias.get(g) == field]
        exprs = [f"nullif({grp(g)}, '')" for g in srcs]
        if not exprs:
            return "NULL"
        return exprs[0] if len(exprs) == 1 else f"coalesce({', '.join(exprs)})"

    ts_text = group("timestamp")
    fmts = fmt.timestamp_format
    if fmts == ["iso8601"]:
        ts_expr = f"TRY_CAST(replace({ts_text}, ',', '.') AS TIMESTAMPTZ)"
    else:
        if fmt.year == "infer":
            fmt_list = "[" + ", ".join(lit(f + " %Y") for f in fmts) + "]"
            parsed = f"try_strptime({ts_text} || ' {ref_year}', {fmt_list})"
        else:
            fmt_list = "[" + ", ".join(lit(f) for f in fmts) + "]"
            parsed = f"try_strptime({ts_text}, {fmt_list})"
        if fmt.has_offset:
            ts_expr = parsed
        else:
            ts_expr = f"timezone(current_setting('TimeZone'), {parsed})"
    # A December record read in January belongs to last year (evaluated once, in an outer query).
    ts_final = "ts0"
    if fmt.year == "infer":
        ts_final = f"CASE WHEN ts0 > TIMESTAMPTZ {lit(ref_ts)} + INTERVAL 1 DAY THEN ts0 - INTERVAL 1 YEAR ELSE ts0 END"

    if fmt.level_from == "level":
        raw_level = group("level")
        level = level_or_default("raw_level", vocab, numeric=False)[1]
    elif fmt.level_from == "syslog_pri":
        raw_level = f"CAST(TRY_CAST({group('pri')} AS INTEGER) % 8 AS VARCHAR)"
        level = (
            "CASE WHEN raw_level IS NULL THEN '" + vocab.default + "' WHEN raw_level IN ('0','1','2') THEN 'FATAL' "
            "WHEN raw_level = '3' THEN 'ERROR' WHEN raw_level = '4' THEN 'WARN' "
            "WHEN raw_level IN ('5','6') THEN 'INFO' ELSE 'DEBUG' END"
        )
    elif fmt.level_from == "http_status":
        raw_level = group("status")
        level = "CASE WHEN raw_level >= '500' THEN 'ERROR' WHEN raw_level >= '400' THEN 'WARN' ELSE 'INFO' END"
    else:
        raw_level = "NULL"
        level = f"'{vocab.default}'"

    svc = group("service")
    if service:
        svc = f"coalesce({svc}, {lit(service)})" if svc != "NULL" else lit(service)
    if head:
        message = "coalesce(msg_tail, '')"
    elif "message" in names or "message" in alias.values():
        message = f"coalesce({group('message')}, '')"
    else:
        message = "line"
    extra = [g for g in names if alias.get(g, g) not in (*_TEXT_COLUMNS, "timestamp")]
    if extra:
        pairs = []
        seen: set[str] = set()
        for g in extra:
            key = alias.get(g, g)
            if key in seen:
                continue
            seen.add(key)
            srcs = [x for x in extra if alias.get(x, x) == key]
            val = f"nullif({grp(srcs[0])}, '')" if len(srcs) == 1 else "coalesce(" + ", ".join(f"nullif({grp(x)}, '')" for x in srcs) + ")"
            pairs.append((key, val))
        # Keys of optional groups that did not take part in the match are left out.
        if len(pairs) <= 3:
            # json_object is half the cost of quoting and concatenating, but writes every key it
            # is given: one branch per set of keys present (most keys first).
            import itertools

            branches = []
            for size in range(len(pairs), 0, -1):
                for chosen in itertools.combinations(range(len(pairs)), size):
                    cond = " AND ".join(f"{val} IS {'NOT ' if i in chosen else ''}NULL" for i, (_, val) in enumerate(pairs))
                    args = ", ".join(f"{lit(pairs[i][0])}, {pairs[i][1]}" for i in chosen)
                    branches.append(f"WHEN {cond} THEN json_object({args})")
            attrs = f"CASE {' '.join(branches)} END"
        else:
            members = ", ".join(f"CASE WHEN {val} IS NOT NULL THEN {lit(_json.dumps(key) + ':')} || to_json({val}) END" for key, val in pairs)
            attrs = f"CAST(nullif('{{' || concat_ws(',', {members}) || '}}', '{{}}') AS JSON)"
    else:
        attrs = "NULL"

    ok_record = "matched AND " + ts_ok("ts")
    if fmt.multiline:
        not_matched = (
            f"CASE WHEN line = {lit(MARKER)} THEN '{TAG_MARKER}' "
            f"WHEN regexp_matches(coalesce(line, ''), '[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F]') "
            f"THEN '{TAG_REJECT}control characters in a line that does not match {fmt.name}' "
            f"ELSE '{TAG_CONT}' END"
        )
        bad_match = f"'{TAG_START_REJECT}' || {ts_reason('ts_raw', 'ts')}"
    else:
        not_matched = (
            f"CASE WHEN line = {lit(MARKER)} THEN '{TAG_MARKER}' "
            f"WHEN line IS NULL OR trim(line) = '' THEN '{TAG_REJECT}empty line' "
            f"ELSE '{TAG_REJECT}does not match format {fmt.name}' END"
        )
        bad_match = f"'{TAG_REJECT}' || {ts_reason('ts_raw', 'ts')}"

    if head:
        msg_tail = f"substr(line, length({grp('_head')}) + 1)"
    else:
        msg_tail = "NULL"
    matches = ", ".join(
        f"regexp_extract(line, {lit(capture_only(regex, set(batch)))}, [{', '.join(lit(g) for g in batch)}]) AS m{b}"
        for b, batch in enumerate(batches)
    )
    return f"""
INSERT INTO events ({EVENT_COLUMNS})
SELECT
  CASE WHEN ok THEN ts END,
  CASE WHEN ok THEN level END,
  CASE WHEN ok THEN raw_level ELSE reason END,
  service, host,
  CASE WHEN ok THEN message ELSE coalesce(line, '') END,
  trace_id, span_id, request_id,
  CASE WHEN ok THEN attrs END,
  {lit(source_file)},
  n
FROM (
  SELECT *, CASE WHEN ok THEN NULL WHEN NOT matched THEN {not_matched} ELSE {bad_match} END AS reason
  FROM (
   SELECT *, {ok_record} AS ok, {level} AS level FROM (
   SELECT * EXCLUDE (ts0), {ts_final} AS ts FROM (
    SELECT n, line, matched, ts_raw, {ts_expr} AS ts0,
      {raw_level} AS raw_level, {svc} AS service, {group('host')} AS host, {message} AS message,
      {group('trace_id')} AS trace_id, {group('span_id')} AS span_id, {group('request_id')} AS request_id,
      {attrs} AS attrs
    FROM (
      SELECT *, coalesce({ts_text} IS NOT NULL, false) AS matched, {ts_text} AS ts_raw, {msg_tail} AS msg_tail
      FROM (SELECT n, line, {matches}
            FROM {source})
    )
   )
   )
  )
)
"""


_TEXT_COLUMNS = ("level", "service", "host", "message", "trace_id", "span_id", "request_id")
# RE2 uses its one-pass engine (no backtracking) for at most this many capture groups.
CAPTURES_PER_MATCH = 4


def capture_only(regex: str, keep: set[str]) -> str:
    """``regex`` with every named group not in ``keep`` made non-capturing (same matches)."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            # A ] right after [ or [^ is a literal member, not the end of the class.
            if regex.startswith("^", i):
                out.append("^")
                i += 1
            if regex.startswith("]", i):
                out.append("]")
                i += 1
            continue
        elif regex.startswith("(?P<", i):
            end = regex.index(">", i)
            if regex[i + 4 : end] not in keep:
                out.append("(?:")
                i = end + 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)


LOGFMT_PAIR = r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)'


def logfmt_events_sql(
    source: str,
    source_file: str,
    fields: FieldAliases,
    vocab: LevelVocabulary,
    service: str | None,
) -> str:
    """``INSERT INTO events`` for logfmt (``key=value key="quoted value"``) lines.

    Pairs stay two parallel lists (a repeated key is no error: the first one fills a column, and
    ``attrs`` keeps every pair but the ones whose values became columns).
    """
    ef = fields.event_fields()

    def pos(key: str) -> str:
        return f"list_position(keys, {lit(key)})"

    def get(key: str) -> str:
        return f"nullif(vals[{pos(key)}], '')"

    def pick(aliases: list[str]) -> str:
        exprs = [get(a) for a in aliases]
        if not exprs:
            return "CAST(NULL AS VARCHAR)"
        return exprs[0] if len(exprs) == 1 else f"coalesce({', '.join(exprs)})"

    def used(aliases: list[str]) -> str:
        """The position of the pair that filled the column, or NULL."""
        if not aliases:
            return "CAST(NULL AS INTEGER)"
        return "CASE " + " ".join(f"WHEN {get(a)} IS NOT NULL THEN {pos(a)}" for a in aliases) + " END"

    svc = pick(ef["service"])
    if service:
        svc = f"coalesce({svc}, {lit(service)})"
    unq = (
        "CASE WHEN left(x, 1) = '\"' AND length(x) >= 2 AND right(x, 1) = '\"' "
        "THEN replace(replace(x[2:-2], '\\\"', '\"'), '\\\\', '\\') ELSE x END"
    )
    used_list = "[" + ", ".join(used(ef[f]) for f in EVENT_FIELD_ORDER) + "]"
    attrs = (
        f"'{{' || array_to_string(list_transform(list_filter(list_zip(keys, vals, range(1, len(keys) + 1)), "
        f"lambda p: NOT coalesce(list_contains({used_list}, p[3]), false)), lambda p: to_json(p[1]) || ':' || to_json(p[2])), ',') || '}}'"
    )
    ts_layers, ts_final = epoch_or_iso_ts("ts_raw")
    level_layers, level_final = level_or_default("raw_level", vocab)
    values = f"""SELECT n, line, keys, vals, ts_raw,
      {pick(ef['level'])} AS raw_level, {svc} AS service, {pick(ef['host'])} AS host,
      coalesce({pick(ef['message'])}, '') AS message, {pick(ef['trace_id'])} AS trace_id,
      {pick(ef['span_id'])} AS span_id, {pick(ef['request_id'])} AS request_id
    FROM (
      SELECT *, {pick(ef['ts'])} AS ts_raw
      FROM (
        SELECT n, line,
          regexp_extract_all(coalesce(line, ''), {lit(LOGFMT_PAIR)}, 1) AS keys,
          list_transform(regexp_extract_all(coalesce(line, ''), {lit(LOGFMT_PAIR)}, 2), lambda x: {unq}) AS vals
        FROM {source}
      )
    )"""
    return f"""
INSERT INTO events ({EVENT_COLUMNS})
SELECT
  CASE WHEN ok THEN ts END,
  CASE WHEN ok THEN level END,
  CASE WHEN ok THEN raw_level ELSE reason END,
  service, host,
  CASE WHEN ok THEN message ELSE coalesce(line, '') END,
  trace_id, span_id, request_id,
  CASE WHEN ok THEN {attrs} END,
  {lit(source_file)},
  n
FROM (
  SELECT *, {ts_ok('ts')} AS ok,
    CASE WHEN line = {lit(MARKER)} THEN '{TAG_MARKER}'
         WHEN line IS NULL OR trim(line) = '' THEN '{TAG_REJECT}empty line'
         WHEN len(keys) = 0 THEN '{TAG_REJECT}no key=value pairs (not logfmt)'
         ELSE '{TAG_REJECT}' || {ts_reason('ts_raw', 'ts')} END AS reason
  FROM (
    SELECT *, {ts_final} AS ts, {level_final} AS level
    FROM ({stack(values, [*ts_layers, *level_layers])})
  )
)
"""


def jsonl_metrics_sql(
    source: str, source_file: str, fields: FieldAliases, service: str | None, metric_default: str | None = None
) -> tuple[str, str]:
    """Two statements for a JSON Lines file of metric samples: insert good rows, stage rejects.

    Returns ``(insert_metrics, insert_rejects)``; both read the file (metric files are small
    next to logs, and a second scan keeps the rows in plain SQL).
    """
    import json as _json

    rd = JsonFields([*fields.ts, *fields.service, *fields.host, *fields.metric, *fields.value, *fields.labels])
    struct_lit = lit(_json.dumps({k: "VARCHAR" for k in rd.keys}))
    svc = rd.value(fields.service)
    if service:
        svc = f"coalesce({svc}, {lit(service)})"
    metric = rd.value(fields.metric)
    if metric_default:
        metric = f"coalesce({metric}, {lit(metric_default)})"
    consumed = [a for group in (fields.ts, fields.service, fields.metric, fields.value, fields.labels) for a in group]
    patch = lit(_json.dumps({k: None for k in consumed}))
    # Without a labels object, the record's other fields are the labels (CSV columns such as region).
    rest = f"nullif(CAST(json_merge_patch(line, {patch}) AS JSON), '{{}}')"
    labels = f"coalesce({', '.join(rd.object_at(a) for a in fields.labels)}, {rest})" if fields.labels else rest
    ts_layers, ts_final = epoch_or_iso_ts("ts_raw")
    values = f"""
        SELECT n, line, v, {rd.value(fields.ts)} AS ts_raw, {metric} AS metric,
          {rd.value(fields.value)} AS value_raw, {svc} AS service,
          CASE WHEN v IS NOT NULL THEN {labels} END AS labels
        FROM ({rd.wrap(f"SELECT n, line, CASE WHEN line IS NOT NULL AND line <> {lit(MARKER)} THEN try(json_transform(line, {struct_lit})) END AS v FROM {source}")})"""
    parsed = f"""
      SELECT n, line, v, ts_raw, {ts_final} AS ts, metric, TRY_CAST(value_raw AS DOUBLE) AS value, value_raw, service, labels
      FROM ({stack(values, ts_layers)})"""
    good = f"{ts_ok('ts')} AND metric IS NOT NULL AND value IS NOT NULL"
    insert = f"""
INSERT INTO metrics (ts, service, metric, value, labels, source_file, source_line)
SELECT ts, service, metric, value, labels, {lit(source_file)}, n FROM ({parsed}) WHERE {good}
"""
    rejects = f"""
INSERT INTO rejects (source_file, line, reason, raw, raw_bytes)
SELECT {lit(source_file)}, n,
  CASE WHEN line = {lit(MARKER)} THEN '{TAG_MARKER}'
       WHEN line IS NULL OR trim(line) = '' THEN 'empty line'
       WHEN v IS NULL OR NOT json_valid(line) THEN 'invalid JSON'
       WHEN metric IS NULL THEN 'no metric name'
       WHEN value IS NULL THEN 'value is not a number: ' || coalesce(left(value_raw, 40), 'missing')
       ELSE {ts_reason('ts_raw', 'ts')} END,
  encode(left(coalesce(line, ''), {RAW_LIMIT})), strlen(coalesce(line, ''))
FROM ({parsed}) WHERE NOT coalesce({good}, false)
"""
    return insert, rejects
