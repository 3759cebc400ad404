"""The dbt project on a simulated company, measured against the simulator's ground truth.

One small company (400 customers × 120 days, seed 5) is simulated, ingested with the real
extractors and built with dbt once per module; the tests then check:

- identity stitching: pairwise precision and recall of node → customer_key against
  ``truth/contact_persons.parquet`` and ``truth/anonymous_persons.parquet`` (≥ 0.99 each);
- one row per person in dim_customer_720, apart from counted anonymous-only cookies;
- the over-merge guard on data: a shared device logging into many contacts merges none;
- incremental correctness after ``--append-days 1``: old events and sessions byte-identical,
  a rebuild without new data changing no row, every table equal to a full refresh;
- the CRM-only path from a folder of CSV exports (contacts.csv + orders.csv).

**How recall is defined.** A pair of identity nodes (contact ids and anonymous ids) of the
same true person counts for recall only when the *data* gives evidence linking each node
to a contact: every contact id is linkable (CRM record; duplicates share a normalised
email), an anonymous id is linkable when it has a login (``user_id``), a tracked email
landing (``email_contact_id``) or a purchase of a CRM order. An anonymous id with none of
these (a cookie that only browsed) carries nothing that ties it to anyone: it is counted
as *unlinkable*, its share is reported, and it is left out of recall (it is its own
anonymous person in dim_customer_720). Precision is measured over every node, unlinkable
ones included. Truth ids absent from the data (a duplicate contact the simulator creates
after the last simulated day) are not nodes and are ignored.

Run as a script to measure a bigger company once (figures are printed, not asserted)::

    .venv/bin/python tests/dbt/test_identity_truth.py <warehouse.duckdb> <sources/truth>
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "dbt_project"
DBT = ROOT / ".venv" / "bin" / "dbt"
CUSTOMERS, DAYS, SEED = 400, 120, 5
MARTS = ("marts", "ml")


# --- helpers ------------------------------------------------------------------------------------


def _clean_env(local: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C720_", "DBT_"))}
    env.update(
        C720_LOCAL_DIR=str(local),
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        DBT_TARGET="duckdb",
        DBT_DUCKDB_PATH=str(local / "warehouse.duckdb"),
    )
    return env


def _run(cmd: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def simulate(sources: Path, env: dict[str, str], *extra: str) -> None:
    _run([sys.executable, "-m", "simulator", *extra, "--out", str(sources), "-q"], env)


def ingest(local: Path, crm_source: Path | None = None, events: bool = True) -> None:
    """The real extractors, in a child process so no setting leaks into this one."""
    source = repr(str(crm_source)) if crm_source else ""
    code = f"from ingest import extract_crm, load_events\nextract_crm({source})\n"
    if events:
        code += "load_events()\n"
    _run([sys.executable, "-c", code], _clean_env(local))


def dbt(local: Path, *args: str) -> str:
    cmd = [
        str(DBT if DBT.exists() else "dbt"),
        *args,
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT),
        "--target-path",
        str(local / "dbt" / "target"),
        "--log-path",
        str(local / "dbt" / "logs"),
    ]
    return _run(cmd, _clean_env(local))


def build(local: Path, *extra: str, command: str = "build") -> None:
    """Both passes of the pipeline (no ML: the score marts build on empty ML tables).

    command="run" skips the data tests: for rebuilds whose point is the resulting rows.
    """
    dbt(local, command, "--exclude", "tag:needs_scores", *extra)
    dbt(local, command, "--select", "tag:needs_scores", *extra)


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@dataclass
class IdentityScore:
    nodes: int  # identity nodes in the data that the truth knows
    unlinkable: int  # anonymous ids with no evidence linking them to a contact
    precision: float  # pairwise, over every node
    recall: float  # pairwise, over linkable nodes
    recall_all_nodes: float  # pairwise, unlinkable anonymous ids included (for reference)
    true_persons_linkable: int  # distinct true persons among linkable nodes
    missed_pairs: int
    wrong_pairs: int

    @property
    def unlinkable_share(self) -> float:
        return self.unlinkable / self.nodes if self.nodes else 0.0


def score_identity(db: Path, truth: Path) -> IdentityScore:
    """Pairwise precision / recall of int_identity_nodes_resolved against the truth."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute(
            f"""
            create temp table truth as
            select 'contact:' || cast(contact_id as varchar) as node_id, person_id
            from read_parquet('{truth / "contact_persons.parquet"}')
            union all
            select 'anon:' || anonymous_id, person_id
            from read_parquet('{truth / "anonymous_persons.parquet"}')
            """
        )
        # evidence straight from staging, independent of the identity models
        con.execute(
            """
            create temp table evidenced as
            select distinct 'anon:' || anonymous_id as node_id
            from staging.stg_web__events
            where user_contact_id is not null
               or email_contact_id is not null
               or (event_type = 'purchase'
                   and order_id in (select order_id from staging.stg_crm__orders))
            """
        )
        con.execute(
            """
            create temp table scored as
            select
                truth.node_id,
                truth.person_id,
                nodes.customer_key,
                truth.node_id like 'contact:%'
                    or truth.node_id in (select node_id from evidenced) as is_linkable
            from truth
            inner join intermediate.int_identity_nodes_resolved as nodes
                on truth.node_id = nodes.node_id
            """
        )

        def pairs(where: str, group: str) -> int:
            return int(
                con.execute(
                    f"select coalesce(sum(n * (n - 1) / 2), 0) from "
                    f"(select count(*) as n from scored where {where} group by {group})"
                ).fetchone()[0]
            )

        both_all, pred_all, true_all = (
            pairs("true", g) for g in ("customer_key, person_id", "customer_key", "person_id")
        )
        both_lnk, true_lnk = (
            pairs("is_linkable", g) for g in ("customer_key, person_id", "person_id")
        )
        nodes, unlinkable, persons = con.execute(
            "select count(*), count(*) filter (where not is_linkable), "
            "count(distinct person_id) filter (where is_linkable) from scored"
        ).fetchone()
    finally:
        con.close()
    return IdentityScore(
        nodes=nodes,
        unlinkable=unlinkable,
        precision=both_all / pred_all if pred_all else 1.0,
        recall=both_lnk / true_lnk if true_lnk else 1.0,
        recall_all_nodes=both_all / true_all if true_all else 1.0,
        true_persons_linkable=persons,
        missed_pairs=true_lnk - both_lnk,
        wrong_pairs=pred_all - both_all,
    )


def table_hashes(db: Path, schemas: tuple[str, ...] = MARTS) -> dict[str, tuple[int, str]]:
    """Per table: row count and an order-independent hash of every column of every row."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in {schemas!r} and table_type = 'BASE TABLE'"
        ).fetchall()
        out = {}
        for schema, table in tables:
            out[f"{schema}.{table}"] = con.execute(
                f"select count(*), coalesce(md5(string_agg(h, ',' order by h)), '') "
                f'from (select md5(cast(t as varchar)) as h from "{schema}"."{table}" as t)'
            ).fetchone()
        return out
    finally:
        con.close()


def session_hashes(db: Path) -> dict[str, tuple[str, object]]:
    return {
        sid: (h, ended)
        for sid, h, ended in query(
            db,
            "select session_id, md5(cast(t as varchar)), ended_at "
            "from intermediate.int_sessions_aggregated as t",
        )
    }


# --- the company --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A simulated company, ingested and built; the local dir (sources/, warehouse.duckdb)."""
    local = tmp_path_factory.mktemp("company") / "local"
    env = _clean_env(local)
    simulate(
        local / "sources",
        env,
        "--customers",
        str(CUSTOMERS),
        "--days",
        str(DAYS),
        "--seed",
        str(SEED),
    )
    ingest(local)
    build(local)
    yield local


def copy_company(company: Path, dest: Path) -> Path:
    """A private copy (sources + warehouse) a test may change."""
    local = dest / "local"
    shutil.copytree(company, local, ignore=shutil.ignore_patterns("dbt"))
    return local


# --- tests --------------------------------------------------------------------------------------


def test_identity_stitching_matches_truth(company: Path) -> None:
    score = score_identity(company / "warehouse.duckdb", company / "sources" / "truth")
    print(
        f"\nidentity @ {CUSTOMERS} customers x {DAYS} days: precision {score.precision:.4f}, "
        f"recall {score.recall:.4f} (linkable), {score.recall_all_nodes:.4f} (all nodes), "
        f"unlinkable anonymous ids {score.unlinkable}/{score.nodes} = {score.unlinkable_share:.1%}"
    )
    assert score.nodes > 0
    assert score.precision >= 0.99, score
    assert score.recall >= 0.99, score


def test_dim_customer_720_one_row_per_person(company: Path) -> None:
    """Rows = true persons with linkable ids + one anonymous person per unlinkable cookie."""
    db = company / "warehouse.duckdb"
    score = score_identity(db, company / "sources" / "truth")
    rows, keys = query(
        db, "select count(*), count(distinct customer_key) from marts.dim_customer_720"
    )[0]
    assert rows == keys
    assert rows == score.true_persons_linkable + score.unlinkable, (rows, score)
    # each true person with linkable ids is exactly one row
    split = query(
        db,
        f"""
        with truth as (
            select 'contact:' || cast(contact_id as varchar) as node_id, person_id
            from read_parquet('{company / "sources" / "truth" / "contact_persons.parquet"}')
        )
        select count(*) from (
            select person_id from truth
            inner join intermediate.int_identity_nodes_resolved using (node_id)
            group by 1 having count(distinct customer_key) > 1
        )
        """,
    )[0][0]
    assert split == 0
    anonymous = query(
        db, "select count(*) from marts.dim_customer_720 where journey_stage = 'anonymous'"
    )[0][0]
    assert anonymous >= score.unlinkable


def test_shared_device_does_not_merge_contacts(company: Path, tmp_path: Path) -> None:
    """One anonymous id logging into many contacts (a shop kiosk) merges none of them."""
    local = copy_company(company, tmp_path)
    db = local / "warehouse.duckdb"
    contacts = [
        r[0]
        for r in query(
            db, "select contact_id from staging.stg_crm__contacts order by contact_id limit 8"
        )
    ]
    before = dict(
        query(
            db,
            "select node_id, customer_key from intermediate.int_identity_nodes_resolved "
            "where node_type = 'contact'",
        )
    )
    con = duckdb.connect(str(db))
    try:
        for i, contact_id in enumerate(contacts):
            con.execute(
                "insert into raw.web_events (event_id, event_type, collector_timestamp, "
                "anonymous_id, user_id, _loaded_at) values "
                "(?, 'login', timestamp '2024-03-01 10:00:00' + to_minutes(?), 'kiosk-1', ?, now())",
                [f"kiosk-login-{i}", i, str(contact_id)],
            )
    finally:
        con.close()
    # stg_web__events is incremental: it takes the kiosk's rows in by their load time.
    dbt(local, "run", "--select", "stg_web__events+", "--exclude", "tag:needs_scores")
    dbt(local, "run", "--select", "tag:needs_scores")
    after = dict(
        query(
            db,
            "select node_id, customer_key from intermediate.int_identity_nodes_resolved "
            "where node_type = 'contact'",
        )
    )
    assert after == before, "the shared device changed who is who"
    kiosk = query(
        db,
        "select customer_key from intermediate.int_identity_nodes_resolved "
        "where node_id = 'anon:kiosk-1'",
    )
    assert kiosk and kiosk[0][0] not in set(before.values()), "the kiosk joined a contact"
    excluded = query(
        db,
        "select count(*), count(distinct contact_node_id) from intermediate.int_identity_merges "
        "where other_node_id = 'anon:kiosk-1' and not is_used and excluded_reason is not null",
    )[0]
    assert excluded == (len(contacts), len(contacts))
    stage = query(
        db, f"select journey_stage from marts.dim_customer_720 where customer_key = '{kiosk[0][0]}'"
    )
    assert stage == [("anonymous",)], "the kiosk is not an anonymous person of its own"


def event_hashes(db: Path) -> set[str]:
    return {
        h for (h,) in query(db, "select md5(cast(t as varchar)) from staging.stg_web__events as t")
    }


def test_incremental_build_changes_only_new_data(company: Path, tmp_path: Path) -> None:
    """After --append-days 1: old event and session rows unchanged, a rebuild without new
    data changes nothing, and every table equals a full refresh."""
    local = copy_company(company, tmp_path)
    db = local / "warehouse.duckdb"
    sessions_before = session_hashes(db)
    events_before = event_hashes(db)
    batches = [r[0] for r in query(db, "select distinct _batch_id from raw.web_events")]
    simulate(local / "sources", _clean_env(local), "--append-days", "1")
    ingest(local)
    placeholders = ", ".join(f"'{b}'" for b in batches)
    new_from, new_events = query(
        db,
        "select min(collector_timestamp) - interval 30 minute, count(distinct event_id) "
        f"from raw.web_events where _batch_id not in ({placeholders}) "
        "and anonymous_id is not null and event_id not in "
        f"(select event_id from raw.web_events where _batch_id in ({placeholders}))",
    )[0]
    assert new_from is not None, "the appended day brought no events"
    build(local)
    sessions_after = session_hashes(db)
    # every session that ended (30 min timeout) before the first new event is unchanged,
    # byte for byte: same session_id, same columns
    old = {sid: v for sid, v in sessions_before.items() if v[1] < new_from}
    assert old, "no old sessions to compare"
    changed = [sid for sid, (h, _) in old.items() if sessions_after.get(sid, (None,))[0] != h]
    assert changed == [], f"{len(changed)} old sessions changed"
    assert len(sessions_after) > len(sessions_before)
    # the event staging table only gained the new load's rows
    events_after = event_hashes(db)
    assert events_before <= events_after, "old event rows changed"
    assert len(events_after) - len(events_before) == new_events

    layers = ("staging", "intermediate", *MARTS)
    incremental = table_hashes(db, layers)
    # a build with no new data changes no row
    ingest(local)
    build(local, command="run")
    again = table_hashes(db, layers)
    assert incremental.keys() == again.keys()
    changed_tables = [t for t in incremental if incremental[t] != again[t]]
    assert changed_tables == [], f"a rebuild without new data changed {changed_tables}"
    # and the incremental tables equal a full refresh of every model
    build(local, "--full-refresh", command="run")
    full = table_hashes(db, layers)
    differ = [t for t in incremental if incremental[t] != full.get(t)]
    assert differ == [], f"incremental differs from a full refresh in {differ}"


def test_crm_only_csv_exports(company: Path, tmp_path: Path) -> None:
    """A CDNOW-like export: contacts.csv (id, created, updated) and orders.csv only."""
    exports = tmp_path / "exports"
    exports.mkdir()
    crm = sqlite3.connect(company / "sources" / "crm.sqlite")
    try:
        for table, columns in (
            ("contacts", "contact_id, created_at, updated_at"),
            ("orders", "order_id, contact_id, ordered_at, total_amount, updated_at"),
        ):
            cursor = crm.execute(f"select {columns} from {table} order by 1")
            with (exports / f"{table}.csv").open("w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(c[0] for c in cursor.description)
                writer.writerows(cursor)
        (n_contacts,) = crm.execute("select count(distinct contact_id) from contacts").fetchone()
    finally:
        crm.close()
    local = tmp_path / "local"
    ingest(local, crm_source=exports, events=False)
    build(local)
    db = local / "warehouse.duckdb"
    rows, keys, with_contact = query(
        db,
        "select count(*), count(distinct customer_key), count(primary_contact_id) "
        "from marts.dim_customer_720",
    )[0]
    assert rows == keys == with_contact == n_contacts
    assert query(db, "select count(*) from ml.customer_features")[0][0] > 0
    assert query(db, "select count(*) from marts.fct_sessions")[0][0] == 0


if __name__ == "__main__":
    result = score_identity(Path(sys.argv[1]), Path(sys.argv[2]))
    print(result, f"unlinkable share {result.unlinkable_share:.2%}")
