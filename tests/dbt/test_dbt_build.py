"""Integration tests of the dbt project on the hand-made raw fixture (DuckDB and Postgres).

Runs dbt the way the pipeline does: `dbt build --exclude tag:needs_scores`, then
`dbt build --select tag:needs_scores`, each in a subprocess with --project-dir/--profiles-dir
and the DBT_* environment variables.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from raw_fixture import EXPECTED_PERSONS, EXPECTED_PERSONS_CRM_ONLY, create_raw  # noqa: E402

from customer720.settings import get_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "dbt_project"
DBT = ROOT / ".venv" / "bin" / "dbt"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SCHEMAS = ("staging", "intermediate", "marts", "ml")
AS_OF = "2026-03-01"


def dbt(args: list[str], env: dict[str, str], tmp: Path) -> str:
    cmd = [
        str(DBT if DBT.exists() else "dbt"),
        *args,
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT),
        "--target-path",
        str(tmp / "target"),
        "--log-path",
        str(tmp / "logs"),
    ]
    full_env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", **env}
    proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (
        f"dbt {' '.join(args)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    )
    return proc.stdout


def postgres_env(url: str, local: Path) -> dict[str, str]:
    """dbt's environment for a Postgres warehouse, as the product sets it (its DBT_PG_*
    connection and session options: customer720.settings)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("C720_LOCAL_DIR", str(local))
        mp.setenv("C720_WAREHOUSE", url)
        return get_settings().tool_env()


def build_all(
    env: dict[str, str], tmp: Path, extra: list[str] | None = None, command: str = "build"
) -> None:
    """Both passes of the pipeline; command="run" skips seeds, snapshots and data tests."""
    extra = extra or []
    dbt([command, "--exclude", "tag:needs_scores", *extra], env, tmp)
    dbt([command, "--select", "tag:needs_scores", *extra], env, tmp)


# --- helpers on DuckDB ------------------------------------------------------------------------


def duck_rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def duck_state(path: Path) -> dict[str, list[tuple]]:
    """Every built relation's rows, sorted: to compare two runs."""
    tables = duck_rows(
        path,
        "select table_schema, table_name from information_schema.tables "
        f"where table_schema in {SCHEMAS!r}",
    )
    return {
        f"{s}.{t}": sorted(duck_rows(path, f'select * from "{s}"."{t}"'), key=repr)
        for s, t in tables
    }


def persons(rows: list[tuple]) -> list[frozenset[str]]:
    """(node_id, customer_key) rows -> the persons as sets of contact / anonymous nodes."""
    groups: dict[str, set[str]] = {}
    for node_id, key in rows:
        groups.setdefault(key, set()).add(node_id)
    # email nodes are implementation detail: compare on contacts and anonymous ids
    return sorted(
        (frozenset(n for n in g if not n.startswith("email:")) for g in groups.values()),
        key=sorted,
    )


@pytest.fixture()
def duck(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    db = tmp_path / "warehouse.duckdb"
    env = {"DBT_TARGET": "duckdb", "DBT_DUCKDB_PATH": str(db)}
    yield db, env


# --- DuckDB -------------------------------------------------------------------------------------


def test_duckdb_build_persons_and_idempotent_rerun(duck, tmp_path: Path) -> None:
    db, env = duck
    create_raw(db)
    build_all(env, tmp_path)

    nodes = duck_rows(
        db, "select node_id, customer_key from intermediate.int_identity_nodes_resolved"
    )
    assert persons(nodes) == sorted((frozenset(p) for p in EXPECTED_PERSONS), key=sorted)
    n_dim, n_keys = duck_rows(
        db, "select count(*), count(distinct customer_key) from marts.dim_customer_720"
    )[0]
    assert n_dim == n_keys == len(EXPECTED_PERSONS)

    stages = dict(
        duck_rows(
            db,
            "select coalesce(cast(primary_contact_id as varchar), customer_key), journey_stage "
            "from marts.dim_customer_720",
        )
    )
    assert stages["1"] == "repeat" and stages["4"] == "lead" and stages["5"] == "first_purchase"
    assert sorted(v for v in stages.values() if v == "anonymous") == ["anonymous", "anonymous"]
    # the over-merge guard kept the shared-device contacts apart and logged why
    excluded = duck_rows(
        db,
        "select count(*) from intermediate.int_identity_merges "
        "where not is_used and other_node_id = 'anon:anon-shared'",
    )[0][0]
    assert excluded == 6
    # no PII columns in marts
    pii = duck_rows(
        db,
        "select table_name, column_name from information_schema.columns where table_schema = 'marts' "
        "and column_name in ('email', 'first_name', 'last_name', 'phone', 'email_normalised')",
    )
    assert pii == []

    before = duck_state(db)
    build_all(env, tmp_path)
    after = duck_state(db)
    assert before.keys() == after.keys()
    changed = [name for name in before if before[name] != after[name]]
    assert changed == [], f"a second build changed {changed}"


def test_duckdb_crm_only(duck, tmp_path: Path) -> None:
    db, env = duck
    create_raw(db, crm_only=True)
    build_all(env, tmp_path)
    n = duck_rows(db, "select count(*) from marts.dim_customer_720")[0][0]
    assert n == EXPECTED_PERSONS_CRM_ONLY
    assert duck_rows(db, "select count(*) from marts.fct_sessions")[0][0] == 0
    assert duck_rows(db, "select count(*) from ml.customer_features")[0][0] > 0


def test_duckdb_empty_raw_builds(duck, tmp_path: Path) -> None:
    db, env = duck
    create_raw(db, empty=True)
    build_all(env, tmp_path)
    assert duck_rows(db, "select count(*) from marts.dim_customer_720")[0][0] == 0


def test_scores_flow_into_dim(duck, tmp_path: Path) -> None:
    db, env = duck
    create_raw(db)
    dbt(["build", "--exclude", "tag:needs_scores"], env, tmp_path)
    key = duck_rows(db, "select customer_key from marts.fct_orders where contact_id = '1'")[0][0]
    con = duckdb.connect(str(db))
    try:
        for as_of, prob, clv in (("2026-02-01", 0.2, 50.0), (AS_OF, 0.8, 250.0)):
            con.execute(
                "insert into ml.churn_predictions values (?, cast(? as date), ?, 'high', 'recency', 'v1', now())",
                [key, as_of, prob],
            )
            con.execute(
                "insert into ml.clv_predictions values (?, cast(? as date), ?, 2.5, 365, 'clv1', now())",
                [key, as_of, clv],
            )
            for rank, product in ((1, 1002), (2, 1001)):
                con.execute(
                    "insert into ml.product_recommendations values "
                    "(?, cast(? as date), ?, ?, 0.5, 'similar', 'v1', now())",
                    [key, as_of, rank, product],
                )
    finally:
        con.close()
    dbt(["build", "--select", "tag:needs_scores"], env, tmp_path)
    row = duck_rows(
        db,
        "select churn_probability, churn_risk_band, next_best_products, model_version, journey_stage "
        f"from marts.dim_customer_720 where customer_key = '{key}'",
    )[0]
    assert row == (0.8, "high", "1002,1001", "v1", "at_risk")
    assert duck_rows(db, "select count(*) from marts.customer_churn_score_history")[0][0] == 2
    assert duck_rows(db, "select count(*) from marts.customer_churn_scores")[0][0] == 1
    # the account team's figures: the latest CLV, revenue at risk = P(churn) x CLV, rank 1
    value = duck_rows(
        db,
        "select clv, revenue_at_risk, save_rank, clv_model_version from marts.customer_value_scores",
    )
    assert value == [(250.0, pytest.approx(0.8 * 250.0), 1, "clv1")]
    dim = duck_rows(
        db,
        "select clv, revenue_at_risk, save_rank, clv_horizon_days from marts.dim_customer_720 "
        f"where customer_key = '{key}'",
    )[0]
    assert dim == (250.0, pytest.approx(200.0), 1, 365)
    others = duck_rows(
        db,
        f"select count(*) from marts.dim_customer_720 where customer_key <> '{key}' "
        "and churn_probability is not null",
    )[0][0]
    assert others == 0


# A second load, as ingest would write it (later _loaded_at, its own batch id): a late event
# inside the look-back that joins two sessions of anon-d1, a visit of a known visitor, a new
# device logging in as contact 4, and events already loaded once (first load wins).
SECOND_LOAD = """
insert into raw.web_events
    (event_id, event_type, collector_timestamp, anonymous_id, user_id, product_id, price,
     _batch_id, _loaded_at, _source)
values
    ('late-1', 'page_view', timestamp '2026-02-25 12:20:00', 'anon-d1', null, null, null,
     'fixture-2', timestamp '2026-03-03 00:00:00', 'fixture://second/1'),
    ('new-1', 'page_view', timestamp '2026-03-02 08:00:00', 'anon-x1', null, null, null,
     'fixture-2', timestamp '2026-03-03 00:00:00', 'fixture://second/2'),
    ('new-2', 'login', timestamp '2026-03-02 08:10:00', 'anon-new', '4', null, null,
     'fixture-2', timestamp '2026-03-03 00:00:00', 'fixture://second/3'),
    ('e-d1-2', 'product_view', timestamp '2026-03-02 09:00:00', 'anon-other', null, 1002, 99.0,
     'fixture-2', timestamp '2026-03-03 00:00:00', 'fixture://second/4'),
    ('new-2', 'login', timestamp '2026-03-02 08:10:00', 'anon-new', '4', null, null,
     'fixture-3', timestamp '2026-03-03 00:05:00', 'fixture://second/5')
"""
WEB_MODELS = "stg_web__events int_sessions_aggregated"


def test_web_incremental_equals_full_refresh(duck, tmp_path: Path) -> None:
    """The incremental event staging and sessions equal a full refresh after a new load;
    old rows stay byte-identical and a re-run changes nothing."""
    db, env = duck
    create_raw(db)
    dbt(["build", "--exclude", "tag:needs_scores"], env, tmp_path)
    before = duck_state(db)
    con = duckdb.connect(str(db))
    try:
        con.execute(SECOND_LOAD)
    finally:
        con.close()
    dbt(["run", "--select", *WEB_MODELS.split()], env, tmp_path)
    incremental = duck_state(db)
    events = incremental["staging.stg_web__events"]
    # the reload of e-d1-2 (and the twice-loaded new-2) did not add a row
    assert len(events) == len(before["staging.stg_web__events"]) + 3
    assert set(before["staging.stg_web__events"]) <= set(events), "an old event row changed"
    sessions_before = set(before["intermediate.int_sessions_aggregated"])
    changed = sessions_before - set(incremental["intermediate.int_sessions_aggregated"])
    # only anon-d1's sessions (the late event joins two of them) and anon-x1's changed
    assert {row[1] for row in changed} <= {"anon-d1", "anon-x1"}, changed
    dbt(["run", "--select", *WEB_MODELS.split()], env, tmp_path)
    assert duck_state(db) == incremental, "a re-run without new data changed rows"
    dbt(["run", "--select", *WEB_MODELS.split(), "--full-refresh"], env, tmp_path)
    full = duck_state(db)
    for model in ("staging.stg_web__events", "intermediate.int_sessions_aggregated"):
        assert incremental[model] == full[model], model
    assert len(full["intermediate.int_sessions_aggregated"]) == 14


def test_features_are_point_in_time(duck, tmp_path: Path) -> None:
    """Changing data after a cutoff leaves that cutoff's features unchanged."""
    db, env = duck
    env = {**env, "DBT_AS_OF": AS_OF}
    create_raw(db)
    vars_ = [
        "--select",
        "+customer_features",
        "--indirect-selection",
        "cautious",
    ]
    sql = "select * from ml.customer_features where cutoff_date <= date '2026-01-30'"
    # product views exactly on the 30- and 60-day bounds of the cutoff 2026-03-01 and on
    # the cutoff itself (the model counts events per device and day: midnights are edges)
    con = duckdb.connect(str(db))
    try:
        for n, at in enumerate(("2025-12-31", "2026-01-30", "2026-01-30 00:00:01", "2026-03-01")):
            con.execute(
                "insert into raw.web_events (event_id, event_type, collector_timestamp, "
                "anonymous_id, product_id) values "
                f"('edge-{n}', 'product_view', timestamp '{at}', 'anon-b1', 1001)"
            )
        # a device of customer 1 from the start, with a view every 4 days of the whole
        # history: the model reads events back to 60 days before the grid's earliest cutoff
        # only, and must still count every view of every cutoff's 60 days
        con.execute(
            "insert into raw.web_events (event_id, event_type, collector_timestamp, "
            "anonymous_id, user_id) values "
            "('early-login', 'login', timestamp '2024-01-01 08:00:00', 'anon-early', '1')"
        )
        con.execute(
            "insert into raw.web_events (event_id, event_type, collector_timestamp, "
            "anonymous_id, product_id) "
            "select 'every-4-days-' || cast(d as varchar), 'product_view', d + interval 9 hour, "
            "'anon-early', 1001 from range(timestamp '2024-01-01', timestamp '2026-03-01', "
            "interval 4 day) as t(d)"
        )
    finally:
        con.close()
    dbt(["build", *vars_], env, tmp_path)
    before = sorted(duck_rows(db, sql), key=repr)
    assert before
    # the event counts equal counting every event against every cutoff (the definition)
    by_event = duck_rows(
        db,
        """
        with links as (
            select n.anonymous_id, n.customer_key, min(e.first_seen_at) as linked_at
            from intermediate.int_identity_nodes_resolved as n
            inner join intermediate.int_identity_edges_guarded as e
                on n.node_id = e.other_node_id and e.is_used
            where n.node_type = 'anon'
            group by 1, 2
        )
        select f.customer_key, f.cutoff_date,
            count(*) filter (where v.event_type = 'product_view'
                and v.collector_at > f.cutoff_at - interval 30 day),
            count(*) filter (where v.event_type = 'product_view'
                and v.collector_at <= f.cutoff_at - interval 30 day),
            count(*) filter (where v.event_type = 'add_to_cart'
                and v.collector_at > f.cutoff_at - interval 30 day),
            count(*) filter (where v.event_type = 'add_to_cart'
                and v.collector_at <= f.cutoff_at - interval 30 day)
        from ml.customer_features as f
        inner join links as l on l.customer_key = f.customer_key
        inner join staging.stg_web__events as v
            on v.anonymous_id = l.anonymous_id
            and v.collector_at <= f.cutoff_at
            and v.collector_at > f.cutoff_at - interval 60 day
            and l.linked_at <= f.cutoff_at
        group by 1, 2
        """,
    )
    model = duck_rows(
        db,
        "select customer_key, cutoff_date, product_views_last_30d, product_views_prior_30d, "
        "carts_last_30d, carts_prior_30d from ml.customer_features",
    )
    counted = {(k, d): rest for k, d, *rest in by_event}
    assert counted and any(rest[1] for rest in counted.values())
    for key, day, *rest in model:
        assert rest == counted.get((key, day), [0, 0, 0, 0]), (key, day)
    con = duckdb.connect(str(db))
    try:
        after_cutoff = "timestamp '2026-02-05 10:00:00'"
        con.execute(
            f"update raw.crm_orders set status = 'returned', updated_at = {after_cutoff} where order_id = '106'"
        )
        con.execute(
            f"update raw.crm_contacts set country = 'NL', marketing_consent = false, "
            f"updated_at = {after_cutoff} where contact_id = '1'"
        )
        con.execute(
            "insert into raw.crm_orders (order_id, contact_id, ordered_at, status, channel, total_amount, updated_at) "
            f"values (108, 1, {after_cutoff}, 'placed', 'web', 999.0, {after_cutoff})"
        )
        con.execute(
            "insert into raw.crm_tickets (ticket_id, contact_id, body, created_at, updated_at) "
            f"values (504, 3, 'terrible awful', {after_cutoff}, {after_cutoff})"
        )
        con.execute(
            "insert into raw.web_events (event_id, event_type, collector_timestamp, anonymous_id, user_id) "
            f"values ('pit-1', 'login', {after_cutoff}, 'anon-new-device', '1')"
        )
    finally:
        con.close()
    dbt(["build", *vars_], env, tmp_path)
    after = sorted(duck_rows(db, sql), key=repr)
    assert after == before


def test_a_new_day_keeps_partial_parsing(duck, tmp_path: Path) -> None:
    """The analysis date reaches dbt as env DBT_AS_OF, not a var (dbt re-parses the whole
    project whenever --vars change): the build of the next day, in the same project and
    target folder, re-parses only the files that read it (the as-of model, and the staging
    models, which select the loads the date reads: macros/as_of_loads.sql), and the new
    date takes effect."""
    db, env = duck
    create_raw(db)
    select = ["--select", "+int_as_of_dates_resolved", "--log-level-file", "debug"]
    log = tmp_path / "logs" / "dbt.log"
    dates = []
    for day in ("2026-02-27", "2026-02-28"):
        start = log.stat().st_size if log.exists() else 0
        dbt(["run", *select], {**env, "DBT_AS_OF": day}, tmp_path)
        with log.open(errors="replace") as text:
            text.seek(start)
            parse_log = text.read()
        dates.append(duck_rows(db, "select as_of_date from intermediate.int_as_of_dates_resolved"))
    assert [str(d[0][0]) for d in dates] == ["2026-02-27", "2026-02-28"]
    assert "Unable to do partial parsing" not in parse_log, parse_log[:3000]
    reads_date = {"intermediate/int_as_of_dates_resolved.sql", "staging/web/stg_web__events.sql"} | {
        f"staging/crm/stg_crm__{t}.sql"
        for t in ("contacts", "products", "orders", "order_items", "tickets", "email_events",
                  "survey_responses")
    }  # fmt: skip
    changed = f"0 files deleted, 0 files added, {len(reads_date)} files changed"
    assert f"Partial parsing enabled: {changed}" in parse_log
    updated = set(
        re.findall(r"Partial parsing: updated file: customer720://models/(\S+)", parse_log)
    )
    assert updated == reads_date
    # a var as_of (the old way) is refused with the way to set it, not silently ignored
    proc = subprocess.run(
        [str(DBT), "run", *select[:2], "--vars", "{as_of: '2026-02-28'}"]
        + ["--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
        + ["--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        env={**os.environ, "DO_NOT_TRACK": "1", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "DBT_AS_OF" in proc.stdout, proc.stdout[-2000:]


def test_cutoff_grid_derives_from_the_data_unless_set(duck, tmp_path: Path) -> None:
    """macros/cutoff_grid.sql: with no grid setting the step is a third of the churn
    horizon (90 -> 30 days) or half (182 -> 91); the grid is anchored at the data's first
    order day (2025-09-05, 177 days before AS_OF) and reaches back to a step after it, plus AS_OF itself
    (the scored cutoff) and AS_OF - H (the holdout); explicit vars set the grid's step and count."""
    db, env = duck
    create_raw(db)

    def grid(extra: dict, select: str = "customer_features") -> list[str]:
        dbt(["build", "--vars", json.dumps(extra), "--select", select,
             "--exclude-resource-type", "test"], {**env, "DBT_AS_OF": AS_OF}, tmp_path)  # fmt: skip
        sql = "select distinct cast(cutoff_date as varchar) from ml.customer_features order by 1"
        return [r[0] for r in duck_rows(db, sql)]

    assert grid({}, "+customer_features") == [  # the models it reads once, then only it
        "2025-10-05",
        "2025-11-04",
        "2025-12-01",  # AS_OF - 90: the holdout question, exactly a horizon back
        "2025-12-04",
        "2026-01-03",
        "2026-02-02",
        "2026-03-01",
    ]
    # AS_OF - 182 is before the first order: no such question yet
    assert grid({"churn_horizon_days": 182}) == ["2025-12-05", "2026-03-01"]
    assert grid({"cutoff_step_days": 14, "cutoff_count": 2}) == [
        "2025-12-01",
        "2026-02-06",
        "2026-02-20",
        "2026-03-01",
    ]


# --- Postgres -----------------------------------------------------------------------------------


def _pg_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.fixture()
def pg_database() -> Iterator[str]:
    if not _pg_available():
        pytest.skip("no Postgres on 127.0.0.1:5432")
    import psycopg2

    name = f"c720_dbt_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    admin.cursor().execute(f'create database "{name}"')
    try:
        yield name
    finally:
        admin.cursor().execute(f'drop database if exists "{name}" with (force)')
        admin.close()


def test_postgres_build_and_rerun(pg_database: str, tmp_path: Path) -> None:
    import psycopg2

    url = f"postgresql://postgres@127.0.0.1:5432/{pg_database}"
    create_raw(url)
    env = postgres_env(url, tmp_path / "local")
    build_all(env, tmp_path)

    def state() -> dict[str, list[tuple]]:
        con = psycopg2.connect(url)
        try:
            cur = con.cursor()
            cur.execute(
                "select table_schema, table_name from information_schema.tables "
                f"where table_schema in {SCHEMAS!r}"
            )
            out = {}
            for s, t in cur.fetchall():
                cur.execute(f'select * from "{s}"."{t}"')
                out[f"{s}.{t}"] = sorted(cur.fetchall(), key=repr)
            return out
        finally:
            con.close()

    before = state()
    con = psycopg2.connect(url)
    try:
        cur = con.cursor()
        cur.execute("select node_id, customer_key from intermediate.int_identity_nodes_resolved")
        assert persons(cur.fetchall()) == sorted(
            (frozenset(p) for p in EXPECTED_PERSONS), key=sorted
        )
        cur.execute("select count(*), count(distinct customer_key) from marts.dim_customer_720")
        assert cur.fetchone() == (len(EXPECTED_PERSONS), len(EXPECTED_PERSONS))
    finally:
        con.close()
    build_all(env, tmp_path)
    after = state()
    changed = [name for name in before if before[name] != after.get(name)]
    assert changed == [], f"a second build changed {changed}"

    # a second load: the incremental build equals a full refresh of everything
    con = psycopg2.connect(url)
    try:
        con.autocommit = True
        con.cursor().execute(SECOND_LOAD)
    finally:
        con.close()
    build_all(env, tmp_path, command="run")
    incremental = state()
    assert len(incremental["staging.stg_web__events"]) == len(before["staging.stg_web__events"]) + 3
    assert set(before["staging.stg_web__events"]) <= set(incremental["staging.stg_web__events"])
    build_all(env, tmp_path, ["--full-refresh"], command="run")
    full = state()
    differ = [name for name in incremental if incremental[name] != full.get(name)]
    assert differ == [], f"incremental differs from a full refresh in {differ}"
