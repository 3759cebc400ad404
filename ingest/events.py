"""Load web/app event files (NDJSON, optionally gzip) into ``raw.web_events``.

Each file is read line by line as text, so a malformed line becomes one quarantined
record with its raw text rather than an error that stops the file. A manifest of loaded
files (path, size, mtime, checksum, row counts) makes the load incremental: new files
load, late files for old dates load, known files are skipped, and a known file whose
content changed is reported, never silently reloaded.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from customer720.settings import Settings, get_settings
from customer720.warehouse import duckdb_connection
from ingest import raw_store
from ingest.contract import events_table
from ingest.errors import IngestError

log = logging.getLogger(__name__)

EVENT_FILE_PATTERNS = ("*.json", "*.json.gz", "*.ndjson", "*.ndjson.gz", "*.jsonl", "*.jsonl.gz")


@dataclass
class EventLoadSummary:
    batch_id: str
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    files_changed: list[str] = field(default_factory=list)
    files_rejected: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    new_fields: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def find_event_files(events_dir: Path) -> list[Path]:
    files: set[Path] = set()
    for pattern in EVENT_FILE_PATTERNS:
        files.update(events_dir.rglob(pattern))
    return sorted(files)


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parse_sql(path: Path) -> str:
    spec = events_table()
    known = ", ".join(raw_store._quote(c) for c in spec.column_names)
    extra = (
        "nullif(to_json(map_from_entries(list_transform("
        f"list_filter(json_keys(j), lambda k: not list_contains([{known}], k)), "
        "lambda k: {'key': k, 'value': j->k}))), '{}')"
    )
    select = raw_store.typed_select(
        spec,
        {c: f"(j->>{raw_store._quote(c)})" for c in spec.column_names},
        f"case when j is not null then {extra} end",
        unreadable_when="j is null",
    )
    # The file is read as one text column: '\x1f' (unit separator) never appears unescaped
    # in JSON, so each line arrives whole, malformed or not.
    return f"""
    create or replace temp table _parsed as
    with lines as (
        select row_number() over () as record_no, line as raw_record
        from read_csv({raw_store._quote(str(path))}, columns = {{'line': 'VARCHAR'}},
                      header = false, delim = '\x1f', quote = '', escape = '',
                      auto_detect = false, strict_mode = false)
    ),
    objects as (
        select record_no, raw_record,
               case when json_valid(raw_record) and json_type(raw_record) = 'OBJECT'
                    then json(raw_record) end as j
        from lines
    )
    select record_no, raw_record, {select}
    from objects
    """


def _load_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    rel: str,
    batch_id: str,
    max_rate: float,
    summary: EventLoadSummary,
) -> None:
    spec = events_table()
    con.execute("begin")
    con.execute(_parse_sql(path))
    rows_in, bad = con.execute(
        "select count(*), count(*) filter (where _reason is not null) from _parsed"
    ).fetchone()
    quarantined = raw_store.write_quarantine(con, "_parsed", batch_id, rel, spec.raw_table)
    raw_store.audit_reasons(con, "_parsed", batch_id, rel, spec.raw_table)
    for key, n in raw_store.drift_report(con, "_parsed").items():
        summary.new_fields[key] = summary.new_fields.get(key, 0) + n
        raw_store.audit(con, batch_id, rel, spec.raw_table, "new_field", n, key)
    summary.rows_in += rows_in
    summary.rows_quarantined += quarantined
    if rows_in and bad / rows_in > max_rate:
        # Keep the quarantine rows for inspection, but load nothing from this file and
        # leave it out of the manifest so a fixed file loads on the next run.
        raw_store.audit(con, batch_id, rel, spec.raw_table, "rejected", rows_in, f"{bad} bad rows")
        con.execute("commit")
        summary.files_rejected.append(rel)
        return
    cols = ", ".join(f'"{c}"' for c in spec.column_names)
    con.execute(
        f"""insert into raw.{spec.raw_table} ({cols}, _batch_id, _loaded_at, _source, _extra)
        select {cols}, ?, ?, ?, _extra from _parsed where _reason is null""",
        [batch_id, raw_store.utc_now(), rel],
    )
    loaded = rows_in - bad
    stat = path.stat()
    con.execute(
        "insert or replace into raw.load_manifest values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            rel,
            stat.st_size,
            stat.st_mtime,
            file_checksum(path),
            batch_id,
            raw_store.utc_now(),
            rows_in,
            loaded,
            quarantined,
        ],
    )
    raw_store.audit(con, batch_id, rel, spec.raw_table, "loaded", loaded)
    con.execute("commit")
    summary.files_loaded += 1
    summary.rows_loaded += loaded


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
    with duckdb_connection(settings) as con:
        raw_store.ensure_raw_layer(con)
        if not events_dir.exists():
            log.info(
                "no event folder at %s: web/app data absent, raw.web_events stays as is", events_dir
            )
            return summary
        manifest = {
            row[0]: row[1:]
            for row in con.execute(
                "select path, size_bytes, mtime, checksum from raw.load_manifest"
            ).fetchall()
        }
        for path in find_event_files(events_dir):
            rel = path.relative_to(events_dir).as_posix()
            summary.files_seen += 1
            known = manifest.get(rel)
            if known is not None:
                size, mtime, checksum = known
                stat = path.stat()
                if (stat.st_size, stat.st_mtime) == (size, mtime) or file_checksum(
                    path
                ) == checksum:
                    summary.files_skipped += 1
                    continue
                log.warning(
                    "%s changed after it was loaded; not reloading it (see raw.load_audit)", rel
                )
                raw_store.audit(con, summary.batch_id, rel, "web_events", "changed_after_load", 0)
                summary.files_changed.append(rel)
                continue
            _load_file(con, path, rel, summary.batch_id, max_rate, summary)
    log.info(
        "events: %d files loaded, %d skipped, %d rows loaded, %d quarantined",
        summary.files_loaded,
        summary.files_skipped,
        summary.rows_loaded,
        summary.rows_quarantined,
    )
    if summary.files_rejected:
        raise IngestError(
            raw_store.rejection_message(
                settings, summary.batch_id, summary.files_rejected, max_rate
            )
        )
    return summary
