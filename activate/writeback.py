"""Reverse ETL: churn risk, reasons, lifetime value, revenue at risk, the "who to save"
rank and next best products onto the CRM contact.

Scores go to a CRM-side custom-fields table (``c720_customer_scores``, one row per
contact), as real CRMs keep custom fields. The sync is diff-based: a row is written only
when its values changed since the last sync (compared by a hash of the values), so
re-running writes nothing. Consent is read from the CRM at sync time, not from the
warehouse, because an opt-out must take effect even if the warehouse is a day old:
contacts without marketing consent or soft-deleted receive nothing, and values written
earlier for them are cleared. A row that fails to write is counted with its reason and,
since its hash was not stored, is retried on the next run. Every run appends to
``c720_sync_audit``. Contacts are keyed by their id as text, as the CRM shows it (a
table from a release that keyed them by integer is widened in place on the next sync).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from customer720 import warehouse
from customer720.settings import Settings, get_settings
from customer720.warehouse import sqlalchemy_url
from ingest.contract import contract_boolean

log = logging.getLogger(__name__)

SCORES_TABLE = "c720_customer_scores"
AUDIT_TABLE = "c720_sync_audit"
BATCH_ROWS = 1_000
PAYLOAD = [
    "churn_probability",
    "churn_risk_band",
    "churn_top_reasons",
    "next_best_products",
    "clv",
    "revenue_at_risk",
    "save_rank",
    "model_version",
    "scored_at",
]

_metadata = sa.MetaData()
scores_table = sa.Table(
    SCORES_TABLE,
    _metadata,
    # Text, as every id (ingest/contract.json): a CRM keyed by integers gets "123".
    sa.Column("contact_id", sa.String(255), primary_key=True),
    sa.Column("churn_probability", sa.Float),
    sa.Column("churn_risk_band", sa.String(16)),
    sa.Column("churn_top_reasons", sa.Text),
    sa.Column("next_best_products", sa.Text),
    # expected net revenue in the CLV horizon, churn probability x it, and the account
    # team's order of who to save (1 = most revenue at risk; marts.customer_value_scores)
    sa.Column("clv", sa.Float),
    sa.Column("revenue_at_risk", sa.Float),
    sa.Column("save_rank", sa.Integer),
    sa.Column("model_version", sa.String(64)),
    sa.Column("scored_at", sa.String(32)),
    sa.Column("values_hash", sa.String(64)),
    sa.Column("synced_at", sa.String(32)),
)
audit_table = sa.Table(
    AUDIT_TABLE,
    _metadata,
    sa.Column("run_id", sa.String(64)),
    sa.Column("as_of_date", sa.String(10)),
    sa.Column("synced_at", sa.String(32)),
    sa.Column("dry_run", sa.Boolean),
    sa.Column("inserted", sa.Integer),
    sa.Column("updated", sa.Integer),
    sa.Column("unchanged", sa.Integer),
    sa.Column("skipped_no_consent", sa.Integer),
    sa.Column("skipped_deleted", sa.Integer),
    sa.Column("skipped_unknown_contact", sa.Integer),
    sa.Column("cleared", sa.Integer),
    sa.Column("failed", sa.Integer),
    sa.Column("failures", sa.Text),
    sa.Column("skipped_reason", sa.Text),
)


@dataclass
class SyncResult:
    run_id: str
    as_of_date: str
    dry_run: bool
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_no_consent: int = 0
    skipped_deleted: int = 0
    skipped_unknown_contact: int = 0
    cleared: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    skipped_reason: str | None = None
    # Dry run only: what would be written or cleared, one dict per contact.
    changes: list[dict] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.inserted + self.updated


# What counts as a change: the scoring time moves on every re-score of the same date, so
# it is written along with real changes but does not cause a write by itself.
DIFF_FIELDS = [f for f in PAYLOAD if f != "scored_at"]


def _values_hash(row: dict) -> str:
    payload = json.dumps({k: row.get(k) for k in DIFF_FIELDS}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def desired_values(as_of: date, settings: Settings) -> pd.DataFrame:
    """What each person's primary CRM contact should show, from the published marts."""
    day = as_of.isoformat()
    df = warehouse.query_df(
        f"""
        select s.customer_key,
               d.primary_contact_id as contact_id,
               round(s.churn_probability, 4) as churn_probability,
               s.risk_band as churn_risk_band,
               s.top_reasons as churn_top_reasons,
               round(v.clv, 2) as clv,
               round(v.revenue_at_risk, 2) as revenue_at_risk,
               v.save_rank,
               s.model_version,
               cast(s.scored_at as varchar(32)) as scored_at
        from marts.customer_churn_scores s
        join marts.dim_customer_720 d on d.customer_key = s.customer_key
        left join marts.customer_value_scores v on v.customer_key = s.customer_key
        where s.as_of_date = date '{day}' and d.primary_contact_id is not null
        """,
        settings,
    )
    # The products in rank order, joined here: each engine spells an ordered string
    # aggregate differently (string_agg ... order by, listagg ... within group).
    recs = warehouse.query_df(
        "select customer_key, rank, product_id from marts.customer_recommendations "
        f"where as_of_date = date '{day}'",
        settings,
    )
    products = _joined_in_rank_order(recs)
    df["next_best_products"] = df["customer_key"].map(products).astype(object)
    df["next_best_products"] = df["next_best_products"].where(
        df["next_best_products"].notna(), None
    )
    return df[["contact_id", *PAYLOAD]]


def _joined_in_rank_order(recs: pd.DataFrame) -> pd.Series:
    """Each customer's product ids in rank order, comma-separated, by customer_key. One
    join per customer over plain arrays: a pandas group-by with a Python function took
    1.8 s a day at 100k customers (600k rows), most of it iterating Arrow strings."""
    recs = recs.sort_values(["customer_key", "rank"])
    keys = recs["customer_key"].to_numpy(dtype=object)
    ids = recs["product_id"].astype(str).to_numpy(dtype=object)
    if len(keys) == 0:
        return pd.Series(dtype=object)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    joined = [",".join(ids[a:b]) for a, b in zip(starts, ends, strict=True)]
    return pd.Series(joined, index=keys[starts], dtype=object)


def _ensure_tables(engine: sa.Engine) -> None:
    _widen_integer_key(engine)
    _metadata.create_all(engine, tables=[scores_table, audit_table])
    _add_new_columns(engine)


def _add_new_columns(engine: sa.Engine) -> None:
    """Add the columns a table made by an older release lacks (the CLV fields); their
    values arrive with the next sync, as every row's hash then differs."""
    with engine.begin() as con:
        have = {c["name"] for c in sa.inspect(con).get_columns(SCORES_TABLE)}
        for column in scores_table.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=con.dialect)
                con.exec_driver_sql(f"alter table {SCORES_TABLE} add column {column.name} {kind}")
                log.info("CRM table %s: column %s added", SCORES_TABLE, column.name)


def _widen_integer_key(engine: sa.Engine) -> None:
    """Rebuild a scores table made when contact ids were integers with a text key (its
    rows kept, ids as their decimal text), so text ids such as Salesforce's can be written."""
    with engine.begin() as con:
        inspector = sa.inspect(con)
        if not inspector.has_table(SCORES_TABLE):
            return
        columns = inspector.get_columns(SCORES_TABLE)
        key = next(c for c in columns if c["name"] == "contact_id")
        if not isinstance(key["type"], sa.Integer):
            return
        old = f"{SCORES_TABLE}_integer_ids"
        con.exec_driver_sql(f"alter table {SCORES_TABLE} rename to {old}")
        if con.dialect.name == "postgresql":
            # the primary key's index keeps its name through a rename; free it for the new one
            con.exec_driver_sql(f"alter index if exists {SCORES_TABLE}_pkey rename to {old}_pkey")
        scores_table.create(con)
        had = {c["name"] for c in columns}  # an older release's table lacks the CLV fields
        names = ", ".join(
            c.name for c in scores_table.columns if c.name != "contact_id" and c.name in had
        )
        con.exec_driver_sql(
            f"insert into {SCORES_TABLE} (contact_id, {names}) "
            f"select cast(contact_id as varchar(255)), {names} from {old}"
        )
        con.exec_driver_sql(f"drop table {old}")
    log.info("CRM table %s: contact ids widened from integer to text", SCORES_TABLE)


def sync_scores(as_of: date, dry_run: bool = False, settings: Settings | None = None) -> SyncResult:
    """Write changed scores to the CRM; return what was (or, dry-run, would be) done."""
    settings = settings or get_settings()
    result = SyncResult(run_id=uuid.uuid4().hex[:12], as_of_date=as_of.isoformat(), dry_run=dry_run)
    if "://" not in settings.crm_url:
        # A folder of CRM exports (bring your own data) is input only: no CRM to write to.
        result.skipped_reason = (
            f"the CRM is a folder of file exports ({settings.crm_url}), not a database; "
            "the scores are in marts.customer_churn_scores of the published snapshot"
        )
        log.info("CRM sync skipped for %s: %s", as_of, result.skipped_reason)
        return result
    newest = warehouse.scalar(
        "select max(as_of_date) from marts.customer_churn_score_history", settings
    )
    if newest is not None and as_of < newest:
        # A backfill of an older date: the CRM keeps the newest scores, never goes back.
        result.skipped_reason = f"scores for a newer date ({newest}) exist; the CRM keeps those"
        log.info("CRM sync skipped for %s: %s", as_of, result.skipped_reason)
        return result
    desired = desired_values(as_of, settings)
    engine = sa.create_engine(sqlalchemy_url(settings.crm_url))
    try:
        if not dry_run:
            _ensure_tables(engine)
        with engine.connect() as con:
            contacts = pd.read_sql_query(
                sa.text("select contact_id, marketing_consent, is_deleted from contacts"), con
            )
            has_table = sa.inspect(con).has_table(SCORES_TABLE)
            current = (
                pd.read_sql_query(
                    sa.text(f"select contact_id, values_hash from {SCORES_TABLE}"), con
                )
                if has_table
                else pd.DataFrame({"contact_id": [], "values_hash": []})
            )
        allowed, to_clear = _apply_consent(desired, contacts, current, result)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        known_hash = dict(
            zip(current["contact_id"].astype(str), current["values_hash"], strict=True)
        )
        inserts, updates = [], []
        for row in allowed.to_dict("records"):
            row = {k: (None if pd.isna(v) else v) for k, v in row.items()}
            row["contact_id"] = str(row["contact_id"])
            row["values_hash"] = _values_hash(row)
            row["synced_at"] = now
            previous = known_hash.get(row["contact_id"])
            if previous == row["values_hash"]:
                result.unchanged += 1
            elif previous is None:
                inserts.append(row)
            else:
                updates.append(row)
        result.cleared = len(to_clear)
        if dry_run:
            result.inserted, result.updated = len(inserts), len(updates)
            result.changes = [
                {"action": action, "contact_id": row["contact_id"], **{k: row[k] for k in PAYLOAD}}
                for action, rows in (("insert", inserts), ("update", updates))
                for row in rows
            ] + [{"action": "clear", "contact_id": c} for c in to_clear]
            return result
        if to_clear:
            with engine.begin() as con:
                con.execute(scores_table.delete().where(scores_table.c.contact_id.in_(to_clear)))
        result.inserted = _write(engine, inserts, "insert", result)
        result.updated = _write(engine, updates, "update", result)
        with engine.begin() as con:
            values = asdict(result)
            values.pop("changes")
            values["failures"] = json.dumps(result.failures[:100])
            values["synced_at"] = now
            con.execute(audit_table.insert().values(**values))
    finally:
        engine.dispose()
    log.info(
        "CRM sync %s: %d inserted, %d updated, %d unchanged, %d without consent, "
        "%d deleted, %d cleared, %d failed",
        result.run_id,
        result.inserted,
        result.updated,
        result.unchanged,
        result.skipped_no_consent,
        result.skipped_deleted,
        result.cleared,
        result.failed,
    )
    return result


def _apply_consent(
    desired: pd.DataFrame, contacts: pd.DataFrame, current: pd.DataFrame, result: SyncResult
) -> tuple[pd.DataFrame, list[str]]:
    """Split the desired rows by what the CRM allows now; count the skipped ones.

    Returns the rows that may be written and the contacts whose earlier values must be
    cleared (they opted out or were deleted since).
    """
    # Consent is never inferred: only an explicit yes allows a write. A deletion flag that
    # is neither yes nor no counts as deleted (write nothing rather than guess).
    consent = contacts["marketing_consent"].map(contract_boolean)
    deleted = contacts["is_deleted"].map(contract_boolean)
    contacts = contacts.assign(
        contact_id=contacts["contact_id"].astype(str),
        consent=consent.eq(True),
        deleted=~(deleted.eq(False) | contacts["is_deleted"].isna()),
    )
    merged = desired.assign(contact_id=desired["contact_id"].astype(str)).merge(
        contacts[["contact_id", "consent", "deleted"]], on="contact_id", how="left"
    )
    unknown = merged["consent"].isna()
    deleted = ~unknown & merged["deleted"].astype(bool)
    no_consent = ~unknown & ~deleted & ~merged["consent"].astype(bool)
    result.skipped_unknown_contact = int(unknown.sum())
    result.skipped_deleted = int(deleted.sum())
    result.skipped_no_consent = int(no_consent.sum())
    blocked = set(contacts.loc[contacts["deleted"] | ~contacts["consent"], "contact_id"])
    to_clear = sorted(blocked & set(current["contact_id"].astype(str)))
    allowed = merged[~unknown & ~deleted & ~no_consent].drop(columns=["consent", "deleted"])
    return allowed, to_clear


def _write(engine: sa.Engine, rows: list[dict], kind: str, result: SyncResult) -> int:
    """Write in batches; a failing batch is retried row by row so one bad row fails alone."""
    written = 0
    statement = (
        scores_table.insert()
        if kind == "insert"
        else scores_table.update()
        .where(scores_table.c.contact_id == sa.bindparam("b_contact_id"))
        .values(
            {c.name: sa.bindparam(c.name) for c in scores_table.columns if c.name != "contact_id"}
        )
    )

    def params(batch: list[dict]) -> list[dict]:
        if kind == "insert":
            return batch
        return [{**r, "b_contact_id": r["contact_id"]} for r in batch]

    for start in range(0, len(rows), BATCH_ROWS):
        batch = rows[start : start + BATCH_ROWS]
        try:
            with engine.begin() as con:
                con.execute(statement, params(batch))
            written += len(batch)
        except sa.exc.SQLAlchemyError:
            for row in batch:
                try:
                    with engine.begin() as con:
                        con.execute(statement, params([row]))
                    written += 1
                except sa.exc.SQLAlchemyError as exc:
                    result.failed += 1
                    result.failures.append(
                        f"contact {row['contact_id']}: {type(exc.orig).__name__}: {exc.orig}"
                    )
    return written


def _failure_contact(failure: str) -> str | None:
    """The contact id a failure note names (``contact <id>: <error>``)."""
    head, sep, _ = failure.partition(": ")
    return head.removeprefix("contact ") if sep and head.startswith("contact ") else None


def forget_contacts(
    contact_ids: Iterable[str], settings: Settings | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Remove erased contacts from the writeback tables; return rows removed per table.

    Their score rows go (on SQLite with ``secure_delete``, so the bytes go too) and their
    ids are cut from the failure notes of the sync audit. ``dry_run`` only counts.
    """
    settings = settings or get_settings()
    ids = sorted({str(i) for i in contact_ids})
    if not ids:
        return {}
    if "://" not in settings.crm_url:
        return {}  # a folder of CRM exports: no writeback table
    url = sa.make_url(sqlalchemy_url(settings.crm_url))
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return {}  # no CRM database here: nothing was written back
    removed: dict[str, int] = {}
    engine = sa.create_engine(url)
    try:
        if not dry_run:
            _widen_integer_key(engine)
        with engine.begin() as con:
            inspector = sa.inspect(con)
            if con.dialect.name == "sqlite" and not dry_run:
                con.exec_driver_sql("pragma secure_delete = on")
            if inspector.has_table(SCORES_TABLE):
                mine = scores_table.c.contact_id.in_(ids)
                n = con.execute(
                    sa.select(sa.func.count()).select_from(scores_table).where(mine)
                ).scalar_one()
                if n and not dry_run:
                    con.execute(scores_table.delete().where(mine))
                if n:
                    removed[f"crm:{SCORES_TABLE}"] = int(n)
            if inspector.has_table(AUDIT_TABLE):
                cut = 0
                rows = con.execute(
                    sa.select(audit_table.c.run_id, audit_table.c.failures).where(
                        audit_table.c.failures.is_not(None), audit_table.c.failures != "[]"
                    )
                ).all()
                for run_id, failures in rows:
                    notes = json.loads(failures)
                    kept = [f for f in notes if _failure_contact(f) not in ids]
                    if len(kept) == len(notes):
                        continue
                    cut += len(notes) - len(kept)
                    if not dry_run:
                        con.execute(
                            audit_table.update()
                            .where(audit_table.c.run_id == run_id)
                            .values(failures=json.dumps(kept))
                        )
                if cut:
                    removed[f"crm:{AUDIT_TABLE}.failures"] = cut
    finally:
        engine.dispose()
    return removed
