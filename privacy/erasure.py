"""Erasure: remove one person from every layer, keep them out, log it without personal data.

``python -m privacy erase --email X`` (or ``--contact-id N``):

1. **Who** — the person is every id the warehouse joined to them: the CRM records with
   that email (or that id, and then its email), every node the identity graph stitched
   to them (other CRM records, email hashes, anonymous web ids), their orders, and
   cookies loaded since the last build that name only them. Placeholder emails (``n/a``)
   identify nobody, as in the identity graph.
2. **Where** — every base table of every schema of the warehouse, found from
   ``information_schema`` (new models are covered without a list): a row goes when a
   column named for an id holds one of the person's ids (``customer_key``,
   ``contact_id``/``*_contact_id``/``user_id``, ``anonymous_id``, ``email_hash``,
   ``email``, ``order_id``, ``*node_id``). Staging views follow raw; tables (the CRM's
   earlier versions in ``raw.crm_*_history``, the SCD2 snapshot, incremental models, the
   identity graph, scores and their history) are deleted from directly. ``raw.quarantine`` records that name the person go too.
3. **Elsewhere** — the CRM writeback table (``c720_customer_scores``), report files
   (rows of CSV reports, ids in other text reports), the published snapshot
   (republished), and, on DuckDB, the warehouse file is rewritten so deleted rows do not
   linger in free blocks.
4. **Never again** — hashes of all the person's ids go to ``privacy.suppression_list``,
   which ingest honours (:mod:`ingest.suppression`).
5. **Logged** — ``privacy.erasure_audit``: erasure id, time, a hash of the request, and
   rows removed per table. No email, no id in clear.
6. **Checked** — every table of the warehouse, the snapshot and the CRM writeback table is
   searched for the person's ids afterwards; what remains is reported.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from activate.writeback import forget_contacts
from customer720.settings import Settings, get_settings
from customer720.warehouse import Destination, open_destination, open_duckdb_file
from ingest import suppression
from ingest.emails import email_sql, normalise_email
from ingest.raw_store import utc_now
from ingest.suppression import subject_hash

log = logging.getLogger(__name__)

AUDIT_TABLE = f"{suppression.SCHEMA}.erasure_audit"
_AUDIT_COLUMNS = "erasure_id varchar, requested_at timestamp, subject_hash varchar, target varchar, rows_removed bigint"
SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")
# Never erased from: the suppression list and the erasure audit (hashes and counts only).
SKIPPED_SCHEMAS = (suppression.SCHEMA, *SYSTEM_SCHEMAS)
TEXT_REPORT_SUFFIXES = {".csv", ".json", ".jsonl", ".html", ".md", ".txt", ".yml", ".yaml"}
REPORT_SIZE_LIMIT = 200 << 20
ERASED = "[erased]"

Fetch = Callable[[str, list], list[tuple]]


class ErasureError(RuntimeError):
    """The erasure could not be done; the message says why and what to do."""


def looks_like_email(email: str) -> bool:
    """The identity graph's ``is_valid_email`` rule: one '@', a dotted domain, no spaces."""
    return (
        re.fullmatch(r"[^@ ]+@[^@ ]+\.[^@ ]+", email) is not None
        and ".." not in email
        and "@." not in email
        and not email.endswith(".")
    )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - dbt.hash, a key not a secret


@dataclass
class Identity:
    """Every id of one person, in clear (held in memory only)."""

    contact_ids: set[str] = field(default_factory=set)  # ids are text (contract.json)
    emails: set[str] = field(default_factory=set)
    email_hashes: set[str] = field(default_factory=set)
    anonymous_ids: set[str] = field(default_factory=set)
    customer_keys: set[str] = field(default_factory=set)
    order_ids: set[str] = field(default_factory=set)

    def size(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.__dict__.values())

    @property
    def node_ids(self) -> set[str]:
        return (
            {f"contact:{i}" for i in self.contact_ids}
            | {f"email:{h}" for h in self.email_hashes}
            | {f"anon:{a}" for a in self.anonymous_ids}
        )

    def subjects(self) -> set[tuple[str, str]]:
        """(kind, hash) pairs for the suppression list."""
        pairs = {("email", subject_hash("email", e)) for e in self.emails}
        pairs |= {("contact", subject_hash("contact", i)) for i in self.contact_ids}
        pairs |= {("order", subject_hash("order", i)) for i in self.order_ids}
        return pairs | {("anon", subject_hash("anon", a)) for a in self.anonymous_ids}

    def values_for(self, column: str) -> list[str]:
        """The person's values for a column, by its name (empty: the column is no id)."""
        name = column.lower()
        if name == "customer_key":
            values: set = self.customer_keys
        elif name in ("contact_id", "user_id") or name.endswith("_contact_id"):
            values = self.contact_ids
        elif name == "anonymous_id":
            values = self.anonymous_ids
        elif name == "email_hash":
            values = self.email_hashes
        elif name == "email":
            values = self.emails
        elif name == "order_id":
            values = self.order_ids
        elif name.endswith("node_id"):
            values = self.node_ids
        else:
            values = set()
        return sorted(str(v) for v in values)

    def text_needles(self) -> list[str]:
        """Strings long and unique enough to search for inside any text (not numeric ids)."""
        return sorted(self.emails | self.email_hashes | self.customer_keys | self.anonymous_ids)

    def summary(self) -> dict[str, int]:
        return {
            "contacts": len(self.contact_ids),
            "emails": len(self.emails),
            "anonymous_ids": len(self.anonymous_ids),
            "customer_keys": len(self.customer_keys),
            "orders": len(self.order_ids),
        }


@dataclass
class ErasureResult:
    erasure_id: str
    subject_hash: str
    dry_run: bool
    identity: dict[str, int]
    removed: dict[str, int] = field(default_factory=dict)
    remaining: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- catalogue


def _table_exists(fetch: Fetch, schema: str, table: str) -> bool:
    return bool(
        fetch(
            """select count(*) from information_schema.tables
               where table_catalog = current_database() and table_schema = ? and table_name = ?""",
            [schema, table],
        )[0][0]
    )


def _catalogue(
    fetch: Fetch, include_views: bool = False, skip: tuple[str, ...] = SKIPPED_SCHEMAS
) -> dict[tuple[str, str], list[str]]:
    """Columns of every table (and view) of every schema but the ``skip`` ones."""
    kinds = "('BASE TABLE', 'VIEW')" if include_views else "('BASE TABLE')"
    skipped = ", ".join(f"'{s}'" for s in skip)
    rows = fetch(
        f"""select c.table_schema, c.table_name, c.column_name
            from information_schema.columns c
            join information_schema.tables t
              on t.table_catalog = c.table_catalog and t.table_schema = c.table_schema
             and t.table_name = c.table_name
            where t.table_catalog = current_database() and t.table_type in {kinds}
              and c.table_schema not in ({skipped}) and c.table_schema not like 'pg_%'
            order by c.table_schema, c.table_name, c.ordinal_position""",
        [],
    )
    tables: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in rows:
        tables.setdefault((schema, table), []).append(column)
    return tables


def _in(expr: str, values: list[str]) -> str:
    return f"{expr} in ({', '.join('?' for _ in values)})"


def _row_predicate(columns: list[str], ident: Identity) -> tuple[str, list[str]]:
    """SQL (and parameters) true for a row holding one of the person's ids."""
    parts, params = [], []
    for column in columns:
        values = ident.values_for(column)
        if not values:
            continue
        expr = (
            email_sql(f'"{column}"')
            if column.lower() == "email"
            else f'cast("{column}" as varchar)'
        )
        parts.append(_in(expr, values))
        params += values
    return " or ".join(parts), params


# --------------------------------------------------------------------------- who


def resolve_identity(
    fetch: Fetch, email: str | None = None, contact_id: str | None = None
) -> Identity:
    """Every id the warehouse ties to the person named by an email or a CRM contact id."""
    ident = Identity()
    if email is not None:
        ident.emails.add(normalise_email(email))
    if contact_id is not None:
        ident.contact_ids.add(str(contact_id))
    # The contacts' earlier versions too: an email the person had before is theirs.
    contact_tables = [
        f"{s}.{t}"
        for s, t in (
            ("raw", "crm_contacts"),
            ("raw", "crm_contacts_history"),
            ("staging", "snap_crm__contacts"),
        )
        if _table_exists(fetch, s, t)
    ]
    order_tables = [
        f"raw.{t}" for t in ("crm_orders", "crm_orders_history") if _table_exists(fetch, "raw", t)
    ]
    has_graph = _table_exists(fetch, "intermediate", "int_identity_nodes_resolved")
    has_dim = _table_exists(fetch, "marts", "dim_customer_720")
    has_events = _table_exists(fetch, "raw", "web_events")
    for _ in range(10):  # a fixed point in two or three rounds
        before = ident.size()
        for table in contact_tables:
            rows = _select_in(
                fetch, f"select contact_id from {table}", email_sql("email"), ident.emails
            )
            ident.contact_ids |= {str(r[0]) for r in rows}
            rows = _select_in(
                fetch,
                f"select {email_sql('email')} from {table}",
                "cast(contact_id as varchar)",
                ident.contact_ids,
            )
            # A placeholder email is shared by strangers: it identifies nobody.
            ident.emails |= {r[0] for r in rows if r[0] and looks_like_email(r[0])}
        ident.email_hashes |= {_md5(e) for e in ident.emails}
        if has_graph:
            _graph_round(fetch, ident)
        elif has_dim:
            rows = _select_in(
                fetch,
                "select customer_key from marts.dim_customer_720",
                "cast(primary_contact_id as varchar)",
                ident.contact_ids,
            )
            ident.customer_keys |= {r[0] for r in rows}
        for table in order_tables:
            rows = _select_in(
                fetch,
                f"select order_id from {table}",
                "cast(contact_id as varchar)",
                ident.contact_ids,
            )
            ident.order_ids |= {str(r[0]) for r in rows}
        if has_events and ident.contact_ids:
            _new_cookies(fetch, ident, has_graph)
        if ident.size() == before:
            break
    return ident


def _select_in(fetch: Fetch, select: str, expr: str, values: set) -> list[tuple]:
    """``select ... where expr in (values)``; no query for no values."""
    if not values:
        return []
    params = sorted(str(v) for v in values)
    return fetch(f"{select} where {_in(expr, params)}", params)


def _graph_round(fetch: Fetch, ident: Identity) -> None:
    """Add the customer keys of the person's nodes, then every node of those keys."""
    nodes = sorted(ident.node_ids)
    if nodes:
        rows = fetch(
            "select distinct customer_key from intermediate.int_identity_nodes_resolved where "
            + _in("node_id", nodes),
            nodes,
        )
        ident.customer_keys |= {r[0] for r in rows if r[0]}
    keys = sorted(ident.customer_keys)
    if not keys:
        return
    rows = fetch(
        "select node_type, contact_id, email_hash, anonymous_id "
        "from intermediate.int_identity_nodes_resolved where " + _in("customer_key", keys),
        keys,
    )
    for _, contact, email_hash, anonymous_id in rows:
        if contact is not None:
            ident.contact_ids.add(str(contact))
        if email_hash:
            ident.email_hashes.add(email_hash)
        if anonymous_id:
            ident.anonymous_ids.add(anonymous_id)


def _new_cookies(fetch: Fetch, ident: Identity, has_graph: bool) -> None:
    """Cookies in raw that name only this person (a login, a tracked email, an own order).

    A cookie the graph gives to someone else (e.g. a shared device, kept apart by the
    over-merge guard) stays; only its events naming the person go (row by row).
    """
    ids = sorted(str(i) for i in ident.contact_ids)
    orders = sorted(str(i) for i in ident.order_ids)
    names_person = " or ".join(
        [_in("user_id", ids), _in("cast(email_contact_id as varchar)", ids)]
        + ([_in("cast(order_id as varchar)", orders)] if orders else [])
    )
    names_other = (
        f"(user_id is not null and not {_in('user_id', ids)}) or "
        f"(email_contact_id is not null and not {_in('cast(email_contact_id as varchar)', ids)})"
    )
    rows = fetch(
        f"""select anonymous_id from raw.web_events
            where anonymous_id in (select anonymous_id from raw.web_events where {names_person})
            group by anonymous_id
            having count(*) filter (where {names_other}) = 0""",
        ids + ids + orders + ids + ids,
    )
    candidates = {r[0] for r in rows} - ident.anonymous_ids
    if candidates and has_graph:
        nodes = sorted(f"anon:{a}" for a in candidates)
        rows = fetch(
            "select anonymous_id, customer_key from intermediate.int_identity_nodes_resolved "
            "where " + _in("node_id", nodes),
            nodes,
        )
        elsewhere = {a for a, key in rows if key not in ident.customer_keys}
        candidates -= elsewhere
    ident.anonymous_ids |= candidates


# --------------------------------------------------------------------------- where


def plan(fetch: Fetch, ident: Identity) -> dict[str, int]:
    """Rows per table that hold the person's ids (what an erasure removes)."""
    counts: dict[str, int] = {}
    for (schema, table), columns in _catalogue(fetch).items():
        predicate, params = _row_predicate(columns, ident)
        if not predicate:
            continue
        n = fetch(f'select count(*) from "{schema}"."{table}" where {predicate}', params)[0][0]
        if n:
            counts[f"{schema}.{table}"] = int(n)
    if _table_exists(fetch, "raw", "quarantine"):
        rows = fetch("select raw_record from raw.quarantine", [])
        subjects = ident.subjects()
        n = sum(1 for (r,) in rows if r and suppression.record_subjects(r) & subjects)
        if n:
            counts[suppression.QUARANTINE] = n
    return counts


def _delete(dest: Destination, ident: Identity) -> dict[str, int]:
    removed: dict[str, int] = {}
    for (schema, table), columns in _catalogue(dest.fetchall).items():
        predicate, params = _row_predicate(columns, ident)
        if not predicate:
            continue
        where = f'from "{schema}"."{table}" where {predicate}'
        n = int(dest.fetchall(f"select count(*) {where}", params)[0][0])
        if n:
            dest.execute(f"delete {where}", params)
            removed[f"{schema}.{table}"] = n
    if _table_exists(dest.fetchall, "raw", "quarantine"):
        n = suppression.forget_quarantined(dest, ident.subjects())
        if n:
            removed[suppression.QUARANTINE] = n
    return removed


# --------------------------------------------------------------------------- the command


def erase(
    email: str | None = None,
    contact_id: str | int | None = None,
    dry_run: bool = False,
    compact: bool = True,
    verify: bool = True,
    settings: Settings | None = None,
) -> ErasureResult:
    """Erase one person (by email or CRM contact id) from every layer; see the module doc."""
    if (email is None) == (contact_id is None):
        raise ErasureError("name the person by exactly one of --email or --contact-id")
    if email is not None and not looks_like_email(normalise_email(email)):
        raise ErasureError(
            f"{email!r} does not look like an email address (placeholders such as 'n/a' "
            "are shared by many people); erase by --contact-id instead"
        )
    settings = settings or get_settings()
    request = ("email", email) if email is not None else ("contact", contact_id)
    erasure_id = f"erasure-{utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    try:
        dest = open_destination(settings)
    except duckdb.IOException as exc:
        raise ErasureError(
            f"cannot open the warehouse {settings.warehouse} for writing ({exc}); it is in "
            "use, probably by a pipeline run: retry when the run has finished"
        ) from exc
    with dest:
        ident = resolve_identity(dest.fetchall, email=email, contact_id=contact_id)
        result = ErasureResult(
            erasure_id,
            subject_hash(*request),
            dry_run,
            ident.summary(),
        )
        if dry_run:
            result.removed = plan(dest.fetchall, ident)
            result.removed.update(forget_contacts(ident.contact_ids, settings, dry_run=True))
            result.removed.update(
                _scrub_files(ident, [settings.reports_dir, settings.model_dir], dry_run=True)
            )
            return result
        # Outside the warehouse first: if a step fails, the warehouse still knows the
        # person's ids and running the command again finishes the job.
        outside = forget_contacts(ident.contact_ids, settings)
        outside.update(_scrub_files(ident, [settings.reports_dir, settings.model_dir]))
        dest.begin()
        result.removed = _delete(dest, ident)
        if not result.removed:
            result.notes.append(
                "nobody with these ids is in the warehouse; they are suppressed for future loads"
            )
        suppression.ensure_tables(dest)
        dest.execute(f"create table if not exists {AUDIT_TABLE} ({_AUDIT_COLUMNS})")
        suppression.add(dest, ident.subjects(), erasure_id)
        _audit(dest, result, {f"warehouse:{t}": n for t, n in result.removed.items()} | outside)
        dest.commit()
        result.removed.update(outside)
    if not settings.warehouse_is_postgres:
        if settings.published.exists():
            from activate.publish import publish

            publish(settings, full=True)  # a fresh file: no erased row in reused blocks
            result.removed["published snapshot (republished)"] = 1
        if compact:
            _compact_duckdb(settings.warehouse_path)
    else:
        result.notes.append(
            "Postgres keeps deleted row versions until VACUUM: run VACUUM on the warehouse"
        )
    if verify:
        result.remaining = find_traces(ident, settings)
    log.info("erasure %s: removed %s", erasure_id, result.removed)
    return result


def _audit(dest: Destination, result: ErasureResult, removed: dict[str, int]) -> None:
    now = utc_now()
    dest.insert_rows(
        AUDIT_TABLE,
        ["erasure_id", "requested_at", "subject_hash", "target", "rows_removed"],
        [(result.erasure_id, now, result.subject_hash, t, n) for t, n in removed.items()],
    )


def _scrub_files(ident: Identity, folders: list[Path], dry_run: bool = False) -> dict[str, int]:
    """Remove the person from text reports: CSV rows go, ids in other files are masked."""
    needles = ident.text_needles()
    if not needles:
        return {}
    pattern = re.compile("|".join(re.escape(n) for n in needles), re.IGNORECASE)
    removed: dict[str, int] = {}
    for folder in folders:
        if not folder.exists():
            continue
        for path in sorted(folder.rglob("*")):
            if (
                not path.is_file()
                or path.suffix.lower() not in TEXT_REPORT_SUFFIXES
                or path.stat().st_size > REPORT_SIZE_LIMIT
            ):
                continue
            text = path.read_text(errors="replace")
            if not pattern.search(text):
                continue
            if path.suffix.lower() == ".csv":
                lines = text.splitlines(keepends=True)
                kept = [line for line in lines if not pattern.search(line)]
                n, text = len(lines) - len(kept), "".join(kept)
            else:
                text, n = pattern.subn(ERASED, text)
            removed[f"file:{path}"] = n
            if dry_run:
                continue
            tmp = path.with_name(path.name + ".erasing")
            tmp.write_text(text)
            os.replace(tmp, path)
    return removed


def _compact_duckdb(path: Path) -> None:
    """Rewrite the DuckDB file so deleted rows do not survive in its free blocks."""
    tmp = path.with_name(path.name + ".compact")
    tmp.unlink(missing_ok=True)
    con = open_duckdb_file(path)  # waits, as every warehouse connection does, for a task closing it
    try:
        catalog = con.execute("select current_database()").fetchone()[0]
        con.execute(f"attach '{tmp}' as compacted")
        con.execute(f'copy from database "{catalog}" to compacted')
        con.execute("detach compacted")
    finally:
        con.close()
    os.replace(tmp, path)
    log.info("rewrote %s without the erased rows", path)


# --------------------------------------------------------------------------- checked


def _search(fetch: Fetch, ident: Identity, label: str, include_views: bool) -> list[str]:
    """Tables and columns of one database where any of the person's ids still appears.

    Every column of every table, the privacy schema included, is read as text: it holds a
    trace when it contains an email, email hash, customer key or anonymous id, equals an
    identity-graph node id, or (a column named for an id) equals one of the ids.
    """
    found: list[str] = []
    needles = [n.lower() for n in ident.text_needles()]
    nodes = sorted(ident.node_ids)
    for (schema, table), columns in _catalogue(fetch, include_views, SYSTEM_SCHEMAS).items():
        counts, params = [], []
        for column in columns:
            text = f'cast("{column}" as varchar)'
            parts = [f"strpos(lower({text}), ?) > 0" for _ in needles]
            params += needles
            for values in (ident.values_for(column), nodes):
                if values:
                    parts.append(_in(text, values))
                    params += values
            counts.append(f"count(*) filter (where {' or '.join(parts) or 'false'})")
        row = fetch(f'select {", ".join(counts)} from "{schema}"."{table}"', params)[0]
        found += [
            f"{label}:{schema}.{table}.{column} ({n} rows)"
            for column, n in zip(columns, row, strict=True)
            if n
        ]
    return found


def find_traces(
    ident: Identity, settings: Settings | None = None, include_views: bool = False
) -> list[str]:
    """Where the person's ids still appear: warehouse, published snapshot, CRM writeback."""
    settings = settings or get_settings()
    found: list[str] = []
    with open_destination(settings) as dest:
        found += _search(dest.fetchall, ident, "warehouse", include_views)
        if _table_exists(dest.fetchall, "raw", "quarantine"):
            rows = dest.fetchall("select raw_record from raw.quarantine", [])
            subjects = ident.subjects()
            n = sum(1 for (r,) in rows if r and suppression.record_subjects(r) & subjects)
            if n:
                found.append(f"warehouse:raw.quarantine.raw_record ({n} records name an id)")
    if not settings.warehouse_is_postgres and settings.published.exists():
        with duckdb.connect(str(settings.published), read_only=True) as con:

            def fetch(sql: str, params: list) -> list[tuple]:
                return con.execute(sql, params).fetchall()

            found += _search(fetch, ident, "published", include_views)
    found += [
        f"{t} ({n} rows)"
        for t, n in forget_contacts(ident.contact_ids, settings, dry_run=True).items()
    ]
    return found
