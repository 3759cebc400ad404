"""Load web/app event files into ``raw.web_events``: NDJSON (optionally gzip) or Parquet.

NDJSON files are read line by line as text, so a malformed line becomes one quarantined
record with its raw text and line number rather than an error that stops the file. Many
files are read by one SQL statement (a batch) that parses each line's JSON once, keeps raw
text only for rows with a problem, and inserts straight into the warehouse: on 1.5M events
it runs at about 70-80 % of a bare ``create table as select * from read_json(...)``, which
validates nothing and, past its first file, drops fields its sample did not see
(``bench/ingest_throughput.py``).

Why not DuckDB's own NDJSON reader for clean files: with the contract's columns given it
drops fields outside the contract without a word, and its unknown-field check (auto-
detected schema) only covers the first file of a scan; a cheap exact drift check needs the
line's text. Parquet files (bring your own data) are read with every column as text and
validated by the same SQL.

A manifest of loaded files (path, size, mtime, checksum, row counts) makes the load
incremental: new files load, late files for old dates load, known files are skipped, and a
known file whose content changed is reported, never silently reloaded. A file with more
than the allowed share of bad records is not loaded at all (its bad records are kept in
quarantine) and stays out of the manifest, so the fixed file loads on the next run.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from customer720.settings import Settings, get_settings
from customer720.warehouse import Destination
from ingest import raw_store, suppression
from ingest.contract import METADATA_COLUMNS, events_table
from ingest.errors import IngestError
from ingest.quarantine import warn_if_quarantined

log = logging.getLogger(__name__)

JSON_PATTERNS = ("*.json", "*.json.gz", "*.ndjson", "*.ndjson.gz", "*.jsonl", "*.jsonl.gz")
PARQUET_PATTERNS = ("*.parquet",)
EVENT_FILE_PATTERNS = JSON_PATTERNS + PARQUET_PATTERNS
# Files read by one statement: bounded by compressed size (~15 rows per kB of gzip NDJSON).
BATCH_BYTES = 48 << 20


@dataclass
class EventLoadSummary:
    batch_id: str
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    files_changed: list[str] = field(default_factory=list)
    files_rejected: list[str] = field(default_factory=list)
    files_empty: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    new_fields: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    quarantine: dict = field(default_factory=dict)  # ingest.quarantine.quarantine_counts

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def find_event_files(events_dir: Path) -> list[Path]:
    files: set[Path] = set()
    for pattern in EVENT_FILE_PATTERNS:
        files.update(p for p in events_dir.rglob(pattern) if p.is_file())
    return sorted(files)


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_parquet(path: Path) -> bool:
    return path.name.endswith(".parquet")


def _known_list() -> str:
    return "[" + ", ".join(raw_store._quote(c) for c in events_table().column_names) + "]"


def _read_lines(paths: list[Path]) -> str:
    # Each file is read as one text column: '\x1f' (unit separator) never appears
    # unescaped in JSON, so each line arrives whole, malformed or not.
    files = "[" + ", ".join(raw_store._quote(str(p)) for p in paths) + "]"
    return f"""read_csv({files}, columns = {{'line': 'VARCHAR'}}, filename = true,
                        header = false, delim = '\x1f', quote = '', escape = '',
                        auto_detect = false, strict_mode = false)"""


def _json_batch_sql(files: list[tuple[Path, str]], events_dir: Path) -> str:
    """One query over many NDJSON files: one row per line, typed, with a reason if bad.

    Each line's JSON is parsed once for its contract fields (``json_transform``, all as
    text; a malformed line gives NULL) and once for its number of keys; only a line with
    more keys than contract values gets its exact list of extra fields. ``record_no`` is
    left null here: numbering lines needs an ordered scan, which would cost every file;
    ``_number_bad_records`` numbers the few bad ones afterwards.
    """
    spec = events_table()
    names = spec.column_names
    structure = "{" + ", ".join(f'"{c}": "VARCHAR"' for c in names) + "}"
    known = _known_list()
    present = " + ".join(f'(_v."{c}" is not null)::int' for c in names)
    # Fields outside the contract, as a JSON object, built only for a line with more keys
    # than contract values present (a key holding JSON null also counts, so the cheap test
    # can only over-select; the exact list decides).
    maybe_extra = f"len(json_keys(line)) > {present}"
    extra = (
        f"case when _ok and ({maybe_extra}) then nullif(to_json(map_from_entries("
        f"list_transform(list_filter(json_keys(line), lambda k: not list_contains({known}, k)), "
        "lambda k: {'key': k, 'value': line -> k}))), '{}') end"
    )
    # One parse for validity and fields: try() makes a malformed line's struct NULL; a
    # valid line that is no object (an array, a string) does not start with '{'. The
    # regexes run only for the rare line that does not start with '{' (trim would copy
    # every line), and the file's relative path is picked from a list by the reader's file
    # index (a substring would be a new string per line).
    rels = "[" + ", ".join(raw_store._quote(rel) for _, rel in files) + "]"
    parsed = f"""(
        select *, _v is not null
                  and (starts_with(line, '{{') or regexp_matches(line, '^\\s*[{{]')) as _ok
        from (
            select {rels}[file_index::bigint + 1] as _file, line,
                   try(json_transform(line, {raw_store._quote(structure)})) as _v
            from {_read_lines([p for p, _ in files])}
            -- blank lines are no records (NULL ones fall out too)
            where starts_with(line, '{{') or not regexp_full_match(line, '\\s*')
        )
    )"""
    # A text field sent as a JSON object or array (user_id: {...}) is no text value; the
    # JSON type is looked up only for a value that starts like one.
    not_text = [
        (
            f"""case when _ok and (starts_with(_v."{c.name}", '{{')
                                   or starts_with(_v."{c.name}", '['))
                then json_type(line, {raw_store._quote(f'$."{c.name}"')}) in ('OBJECT', 'ARRAY')
                end""",
            f"{c.name} is not a text value (a JSON object or array)",
        )
        for c in spec.columns
        if c.type.upper() == "VARCHAR"
    ]
    query = raw_store.typed_query(
        spec,
        {c: f'_v."{c}"' for c in names},
        extra,
        parsed,
        {"_file": "_file", "record_no": "null::bigint", "line": "line"},
        unreadable_when="not _ok",
        extra_checks=not_text,
    )
    return f"""
    select * exclude (line), case when _reason is not null then line end as raw_record
    from ({query})"""


def _number_bad_records(
    work, events_dir: Path, files: list[tuple[Path, str]], relation: str
) -> None:
    """Set ``record_no`` (the 1-based line number in its file) on the bad rows of ``relation``.

    Only files with bad rows are read again, in order, each line numbered; a bad row gets
    the number of the line with its text (identical bad lines of one file are paired in
    order, which is exact since they are indistinguishable).
    """
    bad_files = {
        r[0]
        for r in work.execute(
            f"select distinct _file from {relation} where _reason is not null and record_no is null"
        ).fetchall()
    }
    if not bad_files:
        return
    paths = [p for p, rel in files if rel in bad_files]
    # The path as loaded, by file index: a salvaged copy is read from elsewhere.
    rels = "[" + ", ".join(raw_store._quote(rel) for _, rel in files if rel in bad_files) + "]"
    work.execute(f"""
        create or replace temp table _line_nos as
        with numbered as (
            select _file, n - min(n) over (partition by _file) + 1 as record_no, line
            from (
                -- row_number() over () counts in scan order: file after file, line by line
                select {rels}[file_index::bigint + 1] as _file, row_number() over () as n, line
                from {_read_lines(paths)}
            )
        ),
        wanted as (
            select _file, line, record_no,
                   row_number() over (partition by _file, line order by record_no) as k
            from numbered
            where (_file, line) in (
                select (_file, raw_record) from {relation} where _reason is not null)
        ),
        bad as (
            select rowid as row_id, _file, raw_record,
                   row_number() over (partition by _file, raw_record order by rowid) as k
            from {relation} where _reason is not null
        )
        select bad.row_id, wanted.record_no
        from bad join wanted
          on wanted._file = bad._file and wanted.line = bad.raw_record and wanted.k = bad.k""")
    work.execute(f"""
        update {relation} set record_no = l.record_no
        from _line_nos l where {relation}.rowid = l.row_id""")
    work.execute("drop table _line_nos")


def _parquet_sql(work, path: Path, rel: str) -> str:
    """One Parquet file: every column as text, validated exactly like an NDJSON line."""
    spec = events_table()
    source = (
        f"read_parquet({raw_store._quote(str(path))}, file_row_number = true, "
        "hive_partitioning = false)"
    )
    present = [
        r[0]
        for r in work.execute(
            f"select column_name from (describe select * from {source})"
        ).fetchall()
        if r[0] != "file_row_number"
    ]
    expr = {c: f'cast(p."{c}" as varchar)' for c in spec.column_names if c in present}
    extra_cols = [c for c in present if c not in spec.column_names]
    # A column outside the contract is a field of the rows where it is not null.
    entries = ", ".join(
        f"{{'key': {raw_store._quote(c)}, 'value': to_json(p.\"{c}\")}}" for c in extra_cols
    )
    extra = (
        f"nullif(to_json(map_from_entries(list_filter([{entries}], "
        "lambda e: e.value is not null))), '{}')"
        if extra_cols
        else None
    )
    record = "to_json({" + ", ".join(f'{raw_store._quote(c)}: p."{c}"' for c in present) + "})"
    query = raw_store.typed_query(
        spec,
        expr,
        extra,
        f"{source} p",
        {
            "_file": raw_store._quote(rel),
            "record_no": "p.file_row_number + 1",
            "_record": record,
        },
    )
    return f"""
    select * exclude (_record), case when _reason is not null then _record end as raw_record
    from ({query})"""


def _batches(files: list[tuple[Path, str]]) -> Iterator[list[tuple[Path, str]]]:
    """NDJSON files grouped up to BATCH_BYTES; each Parquet file on its own."""
    batch: list[tuple[Path, str]] = []
    size = 0
    for path, rel in files:
        if _is_parquet(path):
            yield [(path, rel)]
            continue
        batch.append((path, rel))
        size += path.stat().st_size
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _load_batch(
    dest: Destination,
    events_dir: Path,
    files: list[tuple[Path, str]],
    batch_id: str,
    max_rate: float,
    summary: EventLoadSummary,
) -> None:
    spec = events_table()
    work = dest.work
    if len(files) == 1 and _is_parquet(files[0][0]):
        select = _parquet_sql(work, *files[0])
    else:
        select = _json_batch_sql(files, events_dir)
    now = raw_store.utc_now()
    dest.begin()
    # A DuckDB warehouse takes the rows straight from the query (no copy through a temp
    # table); elsewhere the rows are staged in DuckDB and copied over.
    in_place = dest.engine == "duckdb"
    # Row order in raw means nothing: letting DuckDB write unordered saves ~15 % CPU and
    # ~25 % wall time on a large batch. Line numbering below needs the scan order back.
    work.execute("set preserve_insertion_order = false")
    if in_place:
        _insert_in_place(dest, select, batch_id, now, [rel for _, rel in files])
    else:
        work.execute(f"create or replace temp table _parsed as {select}")
    work.execute("set preserve_insertion_order = true")
    _number_bad_records(work, events_dir, files, "_bad_rows" if in_place else "_parsed")
    counts = {
        rel: (int(n), int(bad))
        for rel, n, bad in work.execute(
            """select _file, count(*), count(*) filter (where _reason is not null)
               from _parsed group by _file"""
        ).fetchall()
    }
    rejected = [rel for rel, (n, bad) in counts.items() if n and bad / n > max_rate]
    summary.rows_quarantined += raw_store.write_quarantine(
        dest, "_parsed", batch_id, "_file", spec.raw_table
    )
    raw_store.audit_reasons(dest, "_parsed", batch_id, "_file", spec.raw_table)
    audit_rows = []
    for rel, key, n in raw_store.drift_report(dest, "_parsed", "_file"):
        summary.new_fields[key] = summary.new_fields.get(key, 0) + n
        audit_rows.append((batch_id, rel, spec.raw_table, "new_field", key, n, now))
    rejected_list = ", ".join(map(raw_store._quote, rejected)) or "null"
    raw = f"{raw_store.SCHEMA}.{spec.raw_table}"
    if in_place:
        dest.execute(
            f"""delete from {raw} where _batch_id = ?
                or (_batch_id = ? and _source in ({rejected_list}))""",
            [_bad_batch(batch_id), batch_id],
        )
    else:
        contract_cols = ", ".join(f'"{c}"' for c in spec.column_names)
        dest.copy_into(
            raw,
            list(raw_store.raw_columns(spec)),
            f"""select {contract_cols}, {raw_store._literal(batch_id)},
                       {raw_store._literal(now)}, _file, _extra
                from _parsed where _reason is null
                {f"and _file not in ({rejected_list})" if rejected else ""}""",
        )
    manifest_rows = []
    for path, rel in files:
        n, bad = counts.get(rel, (0, 0))
        summary.rows_in += n
        if n == 0:
            _empty_delivery(dest, batch_id, rel, summary)
            continue
        if rel in rejected:
            # Keep the quarantine rows for inspection, but load nothing from this file and
            # leave it out of the manifest so a fixed file loads on the next run.
            audit_rows.append(
                (batch_id, rel, spec.raw_table, "rejected", f"{bad} bad rows", n, now)
            )
            summary.files_rejected.append(rel)
            continue
        stat = path.stat()
        manifest_rows.append(
            (rel, stat.st_size, stat.st_mtime, file_checksum(path), batch_id, now, n, n - bad, bad)
        )
        audit_rows.append((batch_id, rel, spec.raw_table, "loaded", None, n - bad, now))
        summary.files_loaded += 1
        summary.rows_loaded += n - bad
    manifest = f"{raw_store.SCHEMA}.load_manifest"
    if manifest_rows:
        placeholders = ", ".join("?" for _ in manifest_rows)
        # A file re-tried after a rejection has no manifest row; this only guards a race.
        dest.execute(
            f"delete from {manifest} where path in ({placeholders})", [r[0] for r in manifest_rows]
        )
        dest.insert_rows(
            manifest, list(raw_store.BOOKKEEPING_TABLES["load_manifest"]), manifest_rows
        )
    raw_store.audit_many(dest, audit_rows)
    dest.commit()
    work.execute("drop view if exists _parsed" if in_place else "drop table if exists _parsed")
    work.execute("drop table if exists _bad_rows")


def _empty_delivery(dest: Destination, batch_id: str, rel: str, summary: EventLoadSummary) -> None:
    """A file with no records (0 bytes, an empty gzip, a 0-row Parquet): counted and warned,
    not a failure; it stays out of the manifest so it loads once it has content."""
    log.warning("%s: empty delivery (no records)", rel)
    raw_store.audit(
        dest, batch_id, rel, events_table().raw_table, "empty", 0, "empty delivery: no records"
    )
    summary.files_empty.append(rel)


def _salvage(path: Path, folder: Path) -> tuple[Path, list[int], str | None] | None:
    """A readable copy of an NDJSON file DuckDB could not read; None if no whole line is.

    A gzip stream is decompressed up to where it breaks; a line that is not UTF-8 is kept,
    its bytes shown as ``\\xNN`` (no JSON parses then, so it is quarantined on its own
    line number). Returns the copy, the numbers of the non-UTF-8 lines and, for a broken
    gzip, what was lost. Only files that failed to read come here.
    """
    raw = path.read_bytes()
    lost = None
    if path.name.endswith(".gz"):
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflate.decompress(raw)
            if not inflate.eof:
                lost = "truncated gzip: the file ends before its compressed stream does"
        except zlib.error as exc:
            data, lost = b"", f"corrupt gzip: {exc}"
    else:
        data = raw
    if b"\n" not in data:
        return None  # not one whole line readable: the file is unreadable
    lines = data.split(b"\n")
    not_utf8 = []
    for no, line in enumerate(lines, 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            not_utf8.append(no)
            lines[no - 1] = line.decode("utf-8", "backslashreplace").encode()
    copy = folder / "salvaged.json"
    copy.write_bytes(b"\n".join(lines))
    return copy, not_utf8, lost


def _load_salvaged(
    dest: Destination,
    events_dir: Path,
    path: Path,
    rel: str,
    batch_id: str,
    max_rate: float,
    summary: EventLoadSummary,
) -> bool:
    """Load what is readable of a file DuckDB could not read; quarantine the rest."""
    with tempfile.TemporaryDirectory() as tmp:
        salvaged = _salvage(path, Path(tmp))
        if salvaged is None:
            return False
        copy, not_utf8, lost = salvaged
        _load_batch(dest, events_dir, [(copy, rel)], batch_id, max_rate, summary)
        n_lines = copy.read_bytes().count(b"\n") + 1
    table = events_table().raw_table
    if not_utf8:
        marks = ", ".join(str(n) for n in not_utf8)
        dest.execute(
            f"""update raw.quarantine set reason = 'not valid UTF-8 text (bytes shown as \\xNN)'
                where batch_id = ? and source = ? and record_no in ({marks})""",
            [batch_id, rel],
        )
    if lost is not None:
        dest.insert_rows(
            "raw.quarantine",
            list(raw_store.BOOKKEEPING_TABLES["quarantine"]),
            [
                (
                    batch_id,
                    rel,
                    table,
                    n_lines + 1,
                    f"<{path.stat().st_size} bytes>",
                    lost,
                    raw_store.utc_now(),
                )
            ],
        )
        raw_store.audit(dest, batch_id, rel, table, "quarantined", 1, lost)
        summary.rows_quarantined += 1
    # The manifest knows the file as delivered, not the copy.
    stat = path.stat()
    dest.execute(
        "update raw.load_manifest set size_bytes = ?, mtime = ?, checksum = ? where path = ?",
        [stat.st_size, stat.st_mtime, file_checksum(path), rel],
    )
    dest.commit()
    log.warning("%s: loaded its readable part (%s)", rel, lost or "lines not UTF-8 quarantined")
    return True


def _bad_batch(batch_id: str) -> str:
    return f"{batch_id}/bad"


def _insert_in_place(
    dest: Destination, select: str, batch_id: str, now: datetime, sources: list[str]
) -> None:
    """Insert every row of ``select`` into raw.web_events, bad ones marked, in one pass.

    Called inside the batch's transaction: the bad rows (``_batch_id`` = the batch id +
    ``/bad``, their reason and raw text parked in ``_extra``) are moved to temp table
    ``_bad_rows`` and deleted before the commit, so no reader ever sees them. ``_parsed``
    becomes a view of this batch of files (good rows from raw, bad rows from
    ``_bad_rows``) with the columns the rest of the load reads.
    """
    spec = events_table()
    raw = f"{raw_store.SCHEMA}.{spec.raw_table}"
    cols = ", ".join(f'"{c}"' for c in spec.column_names)
    good, bad = raw_store._literal(batch_id), raw_store._literal(_bad_batch(batch_id))
    in_batch = ", ".join(map(raw_store._quote, sources))
    dest.execute(f"""
        insert into {raw} ({cols}, _batch_id, _loaded_at, _source, _extra)
        select {cols},
               case when _reason is null then {good} else {bad} end,
               {raw_store._literal(now)},
               _file,
               case when _reason is null then _extra else to_json({{
                   'reason': _reason, 'raw': raw_record, 'record_no': record_no,
                   'extra': _extra::json}}) end
        from ({select})""")
    dest.execute(f"""
        create or replace temp table _bad_rows as
        select _source as _file, (_extra ->> 'record_no')::bigint as record_no,
               _extra ->> 'raw' as raw_record, _extra ->> 'reason' as _reason,
               nullif((_extra -> 'extra')::varchar, 'null') as _extra
        from {raw} where _batch_id = {bad}""")
    dest.execute(f"""
        create or replace temp view _parsed as
        select _source as _file, null::bigint as record_no, null::varchar as raw_record,
               null::varchar as _reason, _extra
        from {raw} where _batch_id = {good} and _source in ({in_batch})
        union all
        select _file, record_no, raw_record, _reason, _extra from _bad_rows""")


def _load_or_reject(
    dest: Destination,
    events_dir: Path,
    files: list[tuple[Path, str]],
    batch_id: str,
    max_rate: float,
    summary: EventLoadSummary,
) -> None:
    """Load a batch; a file that cannot be read at all (corrupt gzip, not UTF-8 text) is
    rejected with the reader's error, and the other files of its batch still load."""
    try:
        _load_batch(dest, events_dir, files, batch_id, max_rate, summary)
        return
    except duckdb.Error as exc:
        dest.rollback()
        if len(files) > 1:
            for one in files:
                _load_or_reject(dest, events_dir, [one], batch_id, max_rate, summary)
            return
        path, rel = files[0]
        reason = f"unreadable file: {str(exc).splitlines()[0]}"
        if not _is_parquet(path) and _load_salvaged(
            dest, events_dir, path, rel, batch_id, max_rate, summary
        ):
            return
    log.warning("%s: %s", rel, reason)
    raw_store.audit(dest, batch_id, rel, events_table().raw_table, "rejected", 0, reason)
    dest.commit()
    summary.files_rejected.append(rel)


def _new_files(
    dest: Destination, events_dir: Path, batch_id: str, summary: EventLoadSummary
) -> list[tuple[Path, str]]:
    """Files not in the manifest; known files are skipped, changed ones reported."""
    manifest = {
        row[0]: row[1:]
        for row in dest.fetchall("select path, size_bytes, mtime, checksum from raw.load_manifest")
    }
    todo: list[tuple[Path, str]] = []
    changed_audit = []
    for path in find_event_files(events_dir):
        rel = path.relative_to(events_dir).as_posix()
        summary.files_seen += 1
        known = manifest.get(rel)
        if known is None:
            todo.append((path, rel))
            continue
        size, mtime, checksum = known
        stat = path.stat()
        if (stat.st_size, stat.st_mtime) == (size, mtime) or file_checksum(path) == checksum:
            summary.files_skipped += 1
            continue
        log.warning("%s changed after it was loaded; not reloading it (see raw.load_audit)", rel)
        changed_audit.append(
            (batch_id, rel, "web_events", "changed_after_load", None, 0, raw_store.utc_now())
        )
        summary.files_changed.append(rel)
    raw_store.audit_many(dest, changed_audit)
    dest.commit()
    return todo


def load_events(
    events_dir: Path | None = None,
    settings: Settings | None = None,
    max_quarantine_rate: float | None = None,
) -> EventLoadSummary:
    """Load every event file not yet in the manifest. Raises IngestError on rejected files."""
    settings = settings or get_settings()
    events_dir = Path(events_dir or settings.events_dir)
    max_rate = settings.quarantine_max_rate if max_quarantine_rate is None else max_quarantine_rate
    summary = EventLoadSummary(batch_id=raw_store.new_batch_id("events"))
    started, started_at = time.perf_counter(), raw_store.utc_now()
    with raw_store.open_raw(settings) as dest:
        raw_store.ensure_raw_layer(dest)
        if not events_dir.exists():
            log.info(
                "no event folder at %s: web/app data absent, raw.web_events stays as is", events_dir
            )
            return summary
        todo = _new_files(dest, events_dir, summary.batch_id, summary)
        for _path, rel in [f for f in todo if f[0].stat().st_size == 0]:
            _empty_delivery(dest, summary.batch_id, rel, summary)
        dest.commit()
        todo = [f for f in todo if f[0].stat().st_size > 0]
        for batch in _batches(todo):
            _load_or_reject(dest, events_dir, batch, summary.batch_id, max_rate, summary)
            log.debug("events: %d of %d new files loaded", summary.files_loaded, len(todo))
        # Erased people stay erased while a source still sends them (python -m privacy erase).
        suppression.apply_suppression(dest, summary.batch_id)
        summary.seconds = raw_store.finish_run(
            dest,
            summary.batch_id,
            "events",
            str(events_dir),
            started,
            started_at,
            summary.files_loaded,
            summary.rows_loaded,
            summary.rows_quarantined,
        )
        log.info(
            "events: %d new files, %d rows loaded, %d quarantined in %.1f s (%d files known)",
            summary.files_loaded,
            summary.rows_loaded,
            summary.rows_quarantined,
            summary.seconds,
            summary.files_skipped,
        )
        summary.quarantine = warn_if_quarantined(dest.fetchall, summary.batch_id, "events")
        if summary.files_rejected:
            raise IngestError(
                raw_store.rejection_message(
                    dest, summary.batch_id, summary.files_rejected, max_rate
                )
            )
    return summary


__all__ = ["EventLoadSummary", "METADATA_COLUMNS", "find_event_files", "load_events"]
