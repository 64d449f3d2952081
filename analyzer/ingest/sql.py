"""SQL that parses log lines inside DuckDB: one scan of the file, no per-line Python.

Every line of a file becomes exactly one row of the ``INSERT INTO events`` that these builders
produce. A line that parses becomes an event; a line that does not is staged in the same
statement with ``ts`` NULL and a tag in ``raw_level`` (``\\x01R`` reject, ``\\x01S`` a record start
that was rejected, ``\\x01C`` a continuation candidate, ``\\x01M`` a line the sanitizer already
rejected), and :mod:`analyzer.ingest.pipeline` moves those few rows to ``rejects`` or onto the
record above before the transaction commits. So the accounting identity (lines = events +
continuations + rejects) holds by construction. Rows are appended in file order, so the line
number of each is its row id minus the first one (set by one UPDATE after the insert).
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


def level_sql(raw: str, vocab: LevelVocabulary, numeric: bool = True) -> str:
    """Normalize the level text ``raw`` (a SQL expression) to TRACE..FATAL, NULL when unknown."""
    branches = []
    for level in LEVELS:
        words = vocab.words.get(level, [])  # type: ignore[call-overload]
        if words:
            branches.append(f"WHEN lower({raw}) IN ({', '.join(lit(w.lower()) for w in words)}) THEN '{level}'")
    parts = [f"CASE WHEN {raw} IS NULL THEN NULL", *branches]
    if numeric:
        num = f"TRY_CAST({raw} AS DOUBLE)"
        thresholds = sorted(vocab.numeric_min.items(), key=lambda kv: -kv[1])
        inner = " ".join(f"WHEN {num} >= {v} THEN '{lvl}'" for lvl, v in thresholds)
        parts.append(f"WHEN {num} IS NOT NULL THEN CASE {inner} END")
    parts.append("ELSE NULL END")
    return " ".join(parts)


def level_or_default(raw: str, vocab: LevelVocabulary, numeric: bool = True) -> str:
    """Like :func:`level_sql` but never NULL: unknown or missing levels get the default."""
    return f"coalesce({level_sql(raw, vocab, numeric)}, '{vocab.default}')"


def epoch_or_iso_ts(text: str) -> str:
    """A TIMESTAMPTZ from text that is an epoch number (s/ms/us/ns by magnitude) or ISO-8601.

    Strings without an offset are read in the session time zone, which the pipeline sets to the
    zone given by ``--tz`` (UTC by default). Epoch numbers are always UTC.
    """
    num = f"TRY_CAST({text} AS DOUBLE)"
    big = f"TRY_CAST({text} AS HUGEINT)"
    first = f"TRY_CAST({text} AS TIMESTAMPTZ)"
    epoch = (
        f"CASE WHEN abs({num}) < 1e11 THEN to_timestamp({num}) "
        f"WHEN abs({num}) < 1e14 THEN timezone('UTC', make_timestamp(CAST(round({num} * 1000) AS BIGINT))) "
        f"WHEN abs({num}) < 1e17 THEN timezone('UTC', make_timestamp(CAST({num} AS BIGINT))) "
        f"WHEN {big} IS NOT NULL AND abs({big}) < 1e20 THEN timezone('UTC', make_timestamp(CAST({big} // 1000 AS BIGINT))) "
        f"ELSE NULL END"
    )
    iso = f"TRY_CAST(replace({text}, ',', '.') AS TIMESTAMPTZ)"
    # The common case (ISO with a dot) first; numbers and comma fractions only for what is left.
    return f"coalesce({first}, CASE WHEN {text} IS NULL THEN NULL WHEN {num} IS NOT NULL THEN {epoch} ELSE {iso} END)"


def ts_reason(raw_ts: str, ts: str) -> str:
    """The reject reason for a record whose timestamp is missing, unparseable or impossible."""
    return (
        f"CASE WHEN {raw_ts} IS NULL OR {raw_ts} = '' THEN 'no timestamp' "
        f"WHEN {ts} IS NULL THEN 'unparseable timestamp: ' || left({raw_ts}, 80) "
        f"ELSE 'timestamp out of range (1970..2200): ' || left({raw_ts}, 80) END"
    )


def ts_ok(ts: str) -> str:
    return f"({ts} IS NOT NULL AND {ts} >= TIMESTAMPTZ '{TS_MIN}' AND {ts} < TIMESTAMPTZ '{TS_MAX}')"


def _scalar(expr: str) -> str:
    """A JSON-derived text value, or NULL when it is empty or an object/array (not a scalar)."""
    return f"CASE WHEN {expr} IS NULL OR {expr} = '' OR left({expr}, 1) IN ('{{', '[') THEN NULL ELSE {expr} END"


def _alias_exprs(alias: str, col: callable) -> list[str]:  # type: ignore[valid-type]
    """SQL expressions (in order) that read ``alias`` from a record: literal key, then nested path."""
    out = [_scalar(col(alias))]
    if "." in alias:
        head, _, rest = alias.partition(".")
        path = "$." + ".".join(ident(p) for p in rest.split("."))
        parent = col(head)
        out.append(
            f"CASE WHEN left({parent}, 1) = '{{' THEN {_scalar(f'json_extract_string({parent}, {lit(path)})')} END"
        )
    return out


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


def _coalesce(aliases: list[str], col: callable) -> str:  # type: ignore[valid-type]
    exprs = [e for a in aliases for e in _alias_exprs(a, col)]
    if not exprs:
        return "CAST(NULL AS VARCHAR)"
    return exprs[0] if len(exprs) == 1 else f"coalesce({', '.join(exprs)})"


def _used_key(aliases: list[str], col: callable) -> str:  # type: ignore[valid-type]
    """The literal top-level key that supplied a value (for removing it from attrs), or ''."""
    if not aliases:
        return "''"
    whens = " ".join(f"WHEN {_scalar(col(a))} IS NOT NULL THEN {lit(a)}" for a in aliases)
    return f"CASE {whens} ELSE '' END"


def narrow(aliases: list[str], present: set[str] | None) -> list[str]:
    """The aliases whose key (or, for a dotted alias, whose first part) occurs in ``present``
    (top-level keys seen in the file); all of them when ``present`` is None."""
    if present is None:
        return aliases
    low = {k.lower() for k in present}
    return [a for a in aliases if a.lower() in low or a.split(".")[0].lower() in low]


def jsonl_events_sql(
    source: str,
    source_file: str,
    fields: FieldAliases,
    vocab: LevelVocabulary,
    service: str | None,
    present: set[str] | None = None,
) -> str:
    """``INSERT INTO events`` for a JSON Lines file (one object per line).

    ``present`` narrows the aliases to the keys sampled from the file: evaluating sixty aliases
    per line costs more than parsing it. Keys outside the sample still land in ``attrs``, and
    lines whose timestamp hides under an unsampled alias get a second pass with every alias.
    """
    import json as _json

    ef = {k: narrow(v, present) for k, v in fields.event_fields().items()}
    keys: list[str] = []
    for aliases in ef.values():
        for a in aliases:
            for k in (a, a.split(".")[0]):
                if k.lower() not in {x.lower() for x in keys}:
                    keys.append(k)
    # Sampled keys that no column uses are read as raw JSON, to rebuild attrs without a reparse.
    present_low = {k.lower() for k in present} if present is not None else set()
    taken = {k.lower() for k in keys}
    extra: list[str] = []
    if present is not None and len({k.lower() for k in present}) == len(present):
        extra = sorted(k for k in present if k.lower() not in taken)
    struct = {k: "VARCHAR" for k in keys} | {k: "JSON" for k in extra}
    struct_lit = lit(_json.dumps(struct or {"ts": "VARCHAR"}))

    def col(key: str) -> str:
        return f"v.{ident(key)}"

    ts_raw = _coalesce(ef["ts"], col)
    lvl_raw = _coalesce(ef["level"], col)
    svc_raw = _coalesce(ef["service"], col)
    svc = f"coalesce(service_raw, {lit(service)})" if service else "service_raw"
    # attrs: the record without the keys whose values became columns (nested sources stay).
    order = ("ts", "level", "message", "service", "host", "trace_id", "span_id", "request_id")
    used = [_used_key(ef[k], col) for k in order]
    dynamic = "'{' || " + " || ',' || ".join(f"to_json({u}) || ':null'" for u in used) + " || '}'"
    # Building a patch per row costs as much as parsing the line, so rows whose columns came
    # from each field's first sampled key (nearly all of them) share one constant patch.
    value_col = {"ts": "ts_raw", "level": "raw_level", "message": "message", "service": "service_raw", "host": "host",
                 "trace_id": "trace_id", "span_id": "span_id", "request_id": "request_id"}
    static_keys: list[str] = []
    conds: list[str] = []
    if present is not None:
        for f in order:
            aliases = ef[f]
            if not aliases:
                continue
            first = aliases[0]
            if first.lower() not in present_low:
                conds.append("false")
                continue
            static_keys.append(first)
            conds.append(
                f"(CASE WHEN {col(first)} IS NULL THEN {value_col[f]} IS NULL "
                f"ELSE {value_col[f]} IS NOT NULL AND left({col(first)}, 1) NOT IN ('{{', '[') END)"
            )
    if present is not None and conds and "false" not in conds:
        static = lit(_json.dumps({k: None for k in static_keys}))
        static_ok = " AND ".join(conds)
        # Fastest: a line made only of sampled keys (counted against json_keys, which is cheaper
        # than a merge) whose only non-column keys are the raw-JSON extras: concatenate those.
        others = [k for k in keys if k not in static_keys]
        quiet = " AND ".join(f"{col(k)} IS NULL" for k in others) or "true"
        count = " + ".join(f"CAST({col(k)} IS NOT NULL AS INTEGER)" for k in [*keys, *extra])
        members = ", ".join(f"CASE WHEN {col(k)} IS NOT NULL THEN {lit(_json.dumps(k) + ':')} || {col(k)} END" for k in extra)
        rebuilt = f"'{{' || concat_ws(',', {members}) || '}}'" if extra else "'{}'"
        patch_expr = (
            f"CASE WHEN {static_ok} AND {quiet} AND len(json_keys(line)) = {count} THEN {rebuilt} "
            f"WHEN {static_ok} THEN json_merge_patch(line, {static}) ELSE json_merge_patch(line, {dynamic}) END"
        )
    else:
        patch_expr = f"json_merge_patch(line, {dynamic})"
    reason = f"""CASE
      WHEN line = {lit(MARKER)} THEN '{TAG_MARKER}'
      WHEN line IS NULL OR trim(line) = '' THEN '{TAG_REJECT}empty line'
      WHEN v IS NULL OR NOT json_valid(line) THEN '{TAG_REJECT}invalid JSON'
      WHEN json_type(line) <> 'OBJECT' THEN '{TAG_REJECT}JSON value is not an object'
      ELSE '{TAG_REJECT}' || {ts_reason('ts_raw', 'ts_any')} END"""
    # Reasons and attrs are computed only for the rows that need them (CASE evaluates lazily).
    return f"""
INSERT INTO events ({EVENT_COLUMNS})
SELECT
  ts,
  CASE WHEN ok THEN {level_or_default('raw_level', vocab)} END,
  CASE WHEN ok THEN raw_level ELSE {reason} END,
  service, host,
  CASE WHEN ok THEN message ELSE coalesce(line, '') END,
  trace_id, span_id, request_id,
  CASE WHEN ok THEN nullif(attrs_all, '{{}}') END,
  {lit(source_file)},
  n
FROM (
  SELECT n, line, v, ts_raw, ok, ts AS ts_any, CASE WHEN ok THEN ts END AS ts, CASE WHEN ok THEN attrs_all END AS attrs_all,
    CASE WHEN ok THEN raw_level END AS raw_level, CASE WHEN ok THEN service END AS service,
    CASE WHEN ok THEN host END AS host, message,
    CASE WHEN ok THEN trace_id END AS trace_id, CASE WHEN ok THEN span_id END AS span_id,
    CASE WHEN ok THEN request_id END AS request_id
  FROM (
    SELECT *, {ts_ok('ts')} AS ok
    FROM (
      SELECT n, line, v, ts_raw, {epoch_or_iso_ts('ts_raw')} AS ts, raw_level, {svc} AS service, host, message, trace_id, span_id, request_id,
        CASE WHEN v IS NOT NULL THEN {patch_expr} END AS attrs_all
      FROM (
        SELECT n, line, v,
          {ts_raw} AS ts_raw,
          {lvl_raw} AS raw_level,
          {svc_raw} AS service_raw,
          {_coalesce(ef['host'], col)} AS host,
          {_coalesce(ef['message'], col)} AS message,
          {_coalesce(ef['trace_id'], col)} AS trace_id,
          {_coalesce(ef['span_id'], col)} AS span_id,
          {_coalesce(ef['request_id'], col)} AS request_id
        FROM (SELECT n, line, CASE WHEN line IS NOT NULL AND line <> {lit(MARKER)} THEN try(json_transform(line, {struct_lit})) END AS v
              FROM {source})
      )
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

    def group(field: str) -> str:
        srcs = [g for g in names if g == field or alias.get(g) == field]
        exprs = [f"nullif(m.{ident(g)}, '')" for g in srcs]
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
        level = level_or_default("raw_level", vocab, numeric=False)
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
    message = group("message") if "message" in names or "message" in alias.values() else "line"
    if message != "line":
        message = f"coalesce({message}, '')"
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
            val = f"nullif(m.{ident(srcs[0])}, '')" if len(srcs) == 1 else "coalesce(" + ", ".join(f"nullif(m.{ident(x)}, '')" for x in srcs) + ")"
            pairs.append((key, val))
        # Keys of optional groups that did not take part in the match are left out.
        members = ", ".join(f"CASE WHEN {val} IS NOT NULL THEN {lit(_json.dumps(key) + ':')} || to_json({val}) END" for key, val in pairs)
        attrs = f"nullif('{{' || concat_ws(',', {members}) || '}}', '{{}}')"
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

    # RE2 pays for every byte it captures: when the pattern ends in a catch-all message group,
    # match only the head and take the message as the rest of the line (same result, less work).
    regex, extract = fmt.regex, names
    tail = "(?P<message>.*)$"
    if regex.endswith(tail) and regex.count("(?P<message>") == 1 and "_head" not in names:
        regex = "^(?P<_head>" + regex[1 : -len(tail)] + ")"
        extract = ["_head", *[g for g in names if g != "message"]]
        message = "coalesce(msg_tail, '')"
        msg_tail = "substr(line, length(m._head) + 1)"
    else:
        msg_tail = "NULL"
    names_sql = "[" + ", ".join(lit(g) for g in extract) + "]"
    msg_struct = f"regexp_extract(line, {lit(regex)}, {names_sql})"
    return f"""
INSERT INTO events ({EVENT_COLUMNS})
SELECT
  CASE WHEN ok THEN ts END,
  CASE WHEN ok THEN {level} END,
  CASE WHEN ok THEN raw_level ELSE reason END,
  CASE WHEN ok THEN service END,
  CASE WHEN ok THEN host END,
  CASE WHEN ok THEN message ELSE coalesce(line, '') END,
  CASE WHEN ok THEN trace_id END,
  CASE WHEN ok THEN span_id END,
  CASE WHEN ok THEN request_id END,
  CASE WHEN ok THEN attrs END,
  {lit(source_file)},
  n
FROM (
  SELECT *, CASE WHEN ok THEN NULL WHEN NOT matched THEN {not_matched} ELSE {bad_match} END AS reason
  FROM (
   SELECT *, {ok_record} AS ok FROM (
   SELECT * EXCLUDE (ts0), {ts_final} AS ts FROM (
    SELECT n, line, matched, ts_raw, {ts_expr} AS ts0,
      {raw_level} AS raw_level, {svc} AS service, {group('host')} AS host, {message} AS message,
      {group('trace_id')} AS trace_id, {group('span_id')} AS span_id, {group('request_id')} AS request_id,
      {attrs} AS attrs
    FROM (
      SELECT n, line, m, coalesce({ts_text} IS NOT NULL, false) AS matched, {ts_text} AS ts_raw, {msg_tail} AS msg_tail
      FROM (SELECT n, line, {msg_struct} AS m
            FROM {source})
    )
   )
   )
  )
)
"""


_TEXT_COLUMNS = ("level", "service", "host", "message", "trace_id", "span_id", "request_id")


LOGFMT_PAIR = r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)'


def logfmt_events_sql(
    source: str,
    source_file: str,
    fields: FieldAliases,
    vocab: LevelVocabulary,
    service: str | None,
) -> str:
    """``INSERT INTO events`` for logfmt (``key=value key="quoted value"``) lines."""
    ef = fields.event_fields()

    def col(key: str) -> str:
        return f"kv[{lit(key)}]"

    def pick(aliases: list[str]) -> str:
        exprs = [_scalar(col(a)) for a in aliases]
        return exprs[0] if len(exprs) == 1 else f"coalesce({', '.join(exprs)})"

    known = [a for k in ("ts", "level", "message", "service", "host", "trace_id", "span_id", "request_id") for a in ef[k]]
    svc = pick(ef["service"])
    if service:
        svc = f"coalesce({svc}, {lit(service)})"
    unq = (
        "CASE WHEN left(x, 1) = '\"' AND length(x) >= 2 AND right(x, 1) = '\"' "
        "THEN replace(replace(x[2:-2], '\\\"', '\"'), '\\\\', '\\') ELSE x END"
    )
    known_list = "[" + ", ".join(lit(k) for k in known) + "]"
    return f"""
INSERT INTO events ({EVENT_COLUMNS})
SELECT
  CASE WHEN ok THEN ts END,
  CASE WHEN ok THEN {level_or_default('raw_level', vocab)} END,
  CASE WHEN ok THEN raw_level ELSE reason END,
  CASE WHEN ok THEN service END,
  CASE WHEN ok THEN host END,
  CASE WHEN ok THEN message ELSE coalesce(line, '') END,
  CASE WHEN ok THEN trace_id END,
  CASE WHEN ok THEN span_id END,
  CASE WHEN ok THEN request_id END,
  CASE WHEN ok THEN attrs END,
  {lit(source_file)},
  n
FROM (
  SELECT *, {ts_ok('ts')} AS ok,
    CASE WHEN line = {lit(MARKER)} THEN '{TAG_MARKER}'
         WHEN line IS NULL OR trim(line) = '' THEN '{TAG_REJECT}empty line'
         WHEN len(keys) = 0 THEN '{TAG_REJECT}no key=value pairs (not logfmt)'
         ELSE '{TAG_REJECT}' || {ts_reason('ts_raw', 'ts')} END AS reason
  FROM (
    SELECT n, line, keys, ts_raw, {epoch_or_iso_ts('ts_raw')} AS ts,
      {pick(ef['level'])} AS raw_level, {svc} AS service, {pick(ef['host'])} AS host,
      coalesce({pick(ef['message'])}, '') AS message, {pick(ef['trace_id'])} AS trace_id,
      {pick(ef['span_id'])} AS span_id, {pick(ef['request_id'])} AS request_id,
      CASE WHEN len(keys) > 0 THEN to_json(map_from_entries(list_filter(map_entries(kv), lambda e: NOT list_contains({known_list}, e.key)))) END AS attrs
    FROM (
      SELECT *, {pick(ef['ts'])} AS ts_raw
      FROM (
        SELECT n, line, keys, map_from_entries(list_transform(list_zip(keys, vals), lambda p: {{'key': p[1], 'value': p[2]}})) AS kv
        FROM (
          SELECT n, line,
            regexp_extract_all(coalesce(line, ''), {lit(LOGFMT_PAIR)}, 1) AS keys,
            list_transform(regexp_extract_all(coalesce(line, ''), {lit(LOGFMT_PAIR)}, 2), lambda x: {unq}) AS vals
          FROM {source}
        )
      )
    )
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

    struct_lit = lit(_json.dumps(json_struct(fields, "metrics")))

    def col(key: str) -> str:
        return f"v.{ident(key)}"

    ts_raw = _coalesce(fields.ts, col)
    svc = _coalesce(fields.service, col)
    if service:
        svc = f"coalesce({svc}, {lit(service)})"
    metric = _coalesce(fields.metric, col)
    if metric_default:
        metric = f"coalesce({metric}, {lit(metric_default)})"
    consumed = [a for group in (fields.ts, fields.service, fields.metric, fields.value, fields.labels) for a in group]
    patch = lit(_json.dumps({k: None for k in consumed}))
    # Without a labels object, the record's other fields are the labels (CSV columns such as region).
    rest = f"nullif(CAST(json_merge_patch(line, {patch}) AS JSON), '{{}}')"
    labels = " ".join(
        f"WHEN left({col(a)}, 1) = '{{' THEN CAST({col(a)} AS JSON)" for a in fields.labels if "." not in a
    )
    nested_labels = " ".join(
        f"WHEN left({col(a.split('.')[0])}, 1) = '{{' AND json_type(json_extract({col(a.split('.')[0])}, {lit('$.' + a.split('.', 1)[1])})) = 'OBJECT' "
        f"THEN json_extract({col(a.split('.')[0])}, {lit('$.' + a.split('.', 1)[1])})"
        for a in fields.labels
        if "." in a
    )
    parsed = f"""
      SELECT n, line, v, ts_raw, {epoch_or_iso_ts('ts_raw')} AS ts, metric, TRY_CAST(value_raw AS DOUBLE) AS value, value_raw, service, labels
      FROM (
        SELECT n, line, v, {ts_raw} AS ts_raw, {metric} AS metric,
          {_coalesce(fields.value, col)} AS value_raw, {svc} AS service,
          CASE {labels} {nested_labels} ELSE {rest} END AS labels
        FROM (SELECT n, line, CASE WHEN line IS NOT NULL AND line <> {lit(MARKER)} THEN try(json_transform(line, {struct_lit})) END AS v
              FROM {source})
      )"""
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
