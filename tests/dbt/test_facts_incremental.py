"""The incremental facts equal a full refresh, on DuckDB and Postgres (issues #18, #20).

``fct_orders``, ``fct_order_items``, ``fct_sessions`` and ``fct_product_interactions`` are
incremental (a load watermark + exact re-keying of the rows a new identity link moves), and
so is ``ml.customer_features`` (kept past cutoffs, changed persons recomputed). After each of
these changes the incremental build must give the same rows as ``--full-refresh`` in every
mart and in the feature table:

(a) a new day (DuckDB: ``python -m simulator --append-days 1`` + the real ingest; Postgres:
    the last day of the hand-made fixture delivered again one day later, new ids);
(b) a late event: a product view for an old session (between two sessions of a device when
    there is such a pair, so they merge and old events change session_id);
(c) a re-run of a past date: a past day's raw rows delivered again with a later load time,
    and one customer's only order returned (fully refunded) - the customer is no buyer in
    the facts nor in the churn labels' order history;
(d) a new identity link: a login of one person's device as another person's contact, which
    merges the two and re-keys old rows;
(e) an erasure (``python -m privacy erase``) of that merged person: their rows leave raw and
    every table, the next incremental build must not bring them back nor keep stale rows.

The scenarios change ``raw`` directly (engine-neutral SQL with parameters), so the same code
runs on both engines. Each step: incremental build of the facts and their upstream, a
snapshot of every mart, ``--full-refresh`` of the same selection, equal snapshot.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_identity_truth as truth  # noqa: E402
from raw_fixture import create_raw  # noqa: E402
from test_dbt_build import postgres_env  # noqa: E402

FACTS = (
    "+fct_product_interactions +fct_touchpoints +fct_moments_of_impact +dim_products "
    # the feature table and the watermark its next incremental build starts from
    "+customer_features int_feature_inputs_loaded int_identity_inputs_loaded"
)


# --- an engine-neutral connection to the warehouse ----------------------------------------------


class Warehouse:
    """Opens a connection per call (DuckDB allows one writer: dbt runs in between)."""

    def __init__(self, duckdb_path: Path | None = None, pg_url: str | None = None) -> None:
        self.duckdb_path, self.pg_url = duckdb_path, pg_url

    def _connect(self) -> Any:
        if self.pg_url:
            import psycopg2

            con = psycopg2.connect(self.pg_url)
            con.autocommit = True
            return con
        import duckdb

        return duckdb.connect(str(self.duckdb_path))

    @property
    def mark(self) -> str:
        return "%s" if self.pg_url else "?"

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        con = self._connect()
        try:
            cur = con.cursor()
            cur.execute(sql, params)
            return cur.fetchall()
        finally:
            con.close()

    def dicts(self, sql: str) -> list[dict[str, Any]]:
        con = self._connect()
        try:
            cur = con.cursor()
            cur.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        finally:
            con.close()

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        cols = list(rows[0])
        sql = (
            f"insert into {table} ({', '.join(cols)}) values ({', '.join([self.mark] * len(cols))})"
        )
        con = self._connect()
        try:
            cur = con.cursor()
            for row in rows:
                cur.execute(sql, tuple(row[c] for c in cols))
        finally:
            con.close()

    def state(self) -> dict[str, list[str]]:
        """Every mart table's, ml.customer_features' and the incremental staging and
        intermediate tables' rows as sorted text: to compare two builds (ml's other tables
        are the ML stage's outputs)."""
        intermediate = ", ".join(f"'{t}'" for t in INCREMENTAL_INTERMEDIATE)
        staging = ", ".join(f"'{t}'" for t in INCREMENTAL_STAGING)
        tables = self.rows(
            "select table_schema, table_name from information_schema.tables "
            "where (table_schema = 'marts' or (table_schema = 'ml' and "
            "table_name = 'customer_features') or (table_schema = 'intermediate' and "
            f"table_name in ({intermediate})) or (table_schema = 'staging' and "
            f"table_name in ({staging}))) and table_type = 'BASE TABLE'"
        )
        out = {}
        for schema, table in tables:
            out[f"{schema}.{table}"] = sorted(
                map(repr, self.rows(f'select * from "{schema}"."{table}"'))
            )
        return out


# the intermediate tables an incremental build updates in place (the others are rebuilt)
INCREMENTAL_INTERMEDIATE = (
    "int_identity_edges_collected",
    "int_identity_nodes_resolved",
    "int_sessions_aggregated",
)
# the staging tables an incremental build updates in place (stg_web__events is checked by
# tests/dbt/test_dbt_build.py)
INCREMENTAL_STAGING = (
    "stg_crm__contacts",
    "stg_crm__email_events",
    "stg_crm__order_items",
    "stg_crm__orders",
    "stg_crm__products",
    "stg_crm__survey_responses",
    "stg_crm__tickets",
)

# the incremental models whose data tests a daily build scopes to new rows, and the load-time
# column each is scoped by (meta test_new_rows_by; macros/tests_on_new_rows.sql)
SCOPED_TESTS = {
    "staging.stg_web__events": "loaded_at",
    "intermediate.int_sessions_aggregated": "last_loaded_at",
    "marts.fct_orders": "loaded_at",
    "marts.fct_order_items": "loaded_at",
    "marts.fct_sessions": "last_loaded_at",
    "marts.fct_touchpoints": "loaded_at",
    "marts.fct_product_interactions": "loaded_at",
}


def assert_tests_recorded(wh: Warehouse) -> None:
    """After a build whose data tests passed, every scoped model's watermark is the newest
    load time it holds: the next daily build tests only rows loaded after it."""
    recorded = dict(wh.rows("select model_name, tested_through from dbt_state.tested_loads"))
    for table, column in SCOPED_TESTS.items():
        newest = wh.rows(f"select max({column}) from {table}")[0][0]
        model = table.split(".")[1]
        assert model in recorded, f"no tested watermark for {model}"
        assert dt.datetime.fromisoformat(str(recorded[model])) == newest, model


# --- the scenarios (raw changes) ----------------------------------------------------------------


def next_load(wh: Warehouse, hours: int = 1) -> dt.datetime:
    """A load time later than every load in raw."""
    latest = max(
        r[0]
        for t in ("web_events", "crm_orders", "crm_order_items", "crm_contacts")
        for r in wh.rows(f"select max(_loaded_at) from raw.{t}")
        if r[0] is not None
    )
    return latest + dt.timedelta(hours=hours)


def new_day_by_sql(wh: Warehouse) -> None:
    """The last day's events and orders (and every email event) once more, one day later,
    as new records."""
    loaded = next_load(wh)
    last = wh.rows("select max(collector_timestamp) from raw.web_events")[0][0]
    events = wh.dicts(
        "select * from raw.web_events where collector_timestamp >= "
        "(select max(collector_timestamp) from raw.web_events) - interval '1 day'"
    )
    assert events, "no events to repeat"
    for e in events:
        e.update(
            event_id=f"{e['event_id']}-d2",
            collector_timestamp=e["collector_timestamp"] + dt.timedelta(days=1),
            device_timestamp=e["device_timestamp"] and e["device_timestamp"] + dt.timedelta(days=1),
            _loaded_at=loaded,
            _batch_id="new-day",
        )
    wh.insert("raw.web_events", events)
    orders = wh.dicts(
        "select * from raw.crm_orders where ordered_at >= "
        "(select max(ordered_at) from raw.crm_orders) - interval '1 day'"
    )
    ids = {o["order_id"] for o in orders}
    items = [i for i in wh.dicts("select * from raw.crm_order_items") if i["order_id"] in ids]
    day = dt.timedelta(days=1)
    for o in orders:
        o.update(
            order_id=f"{o['order_id']}-d2",  # ids are text: a new id
            ordered_at=o["ordered_at"] + day,
            updated_at=max(o["updated_at"], last) + day,
            _loaded_at=loaded,
            _batch_id="new-day",
        )
    for i in items:
        i.update(
            order_item_id=f"{i['order_item_id']}-d2",
            order_id=f"{i['order_id']}-d2",
            _loaded_at=loaded,
            _batch_id="new-day",
        )
    wh.insert("raw.crm_orders", orders)
    wh.insert("raw.crm_order_items", items)
    emails = wh.dicts("select * from raw.crm_email_events")
    for e in emails:
        e.update(
            email_event_id=f"{e['email_event_id']}-d2",
            occurred_at=e["occurred_at"] + day,
            updated_at=e["updated_at"] + day,
            _loaded_at=loaded,
            _batch_id="new-day",
        )
    wh.insert("raw.crm_email_events", emails)


def late_event(wh: Warehouse) -> None:
    """A product view for an old session, loaded now; between two close sessions if any."""
    sessions = wh.rows(
        "select anonymous_id, started_at, ended_at from marts.fct_sessions "
        "order by anonymous_id, started_at"
    )
    target = None
    for (a1, _, end1), (a2, start2, _) in zip(sessions, sessions[1:], strict=False):
        if a1 == a2 and dt.timedelta(minutes=30) < start2 - end1 < dt.timedelta(minutes=60):
            target = (a1, end1 + (start2 - end1) / 2)  # merges the two sessions
            break
    if target is None:  # extends the oldest session
        a1, start, end = min(sessions, key=lambda s: s[1])
        target = (a1, end + dt.timedelta(minutes=5))
    anonymous_id, at = target
    template = wh.dicts(
        "select * from raw.web_events where event_type = 'product_view' "
        "and product_id is not null order by event_id limit 1"
    )[0]
    template.update(
        event_id="late-event-1",
        anonymous_id=anonymous_id,
        user_id=None,
        collector_timestamp=at,
        device_timestamp=at,
        email_contact_id=None,
        order_id=None,
        _loaded_at=next_load(wh),
        _batch_id="late",
    )
    wh.insert("raw.web_events", [template])


def lead_orders(wh: Warehouse) -> tuple[str, dict[str, Any]]:
    """A lead (a contact without orders) places a first order, delivered. Returns
    (contact id, the raw order row)."""
    loaded = next_load(wh)
    contact_id = wh.rows(
        "select min(contact_id) from intermediate.int_identity_nodes_resolved "
        "where node_type = 'contact' and customer_key not in "
        "(select customer_key from marts.fct_orders)"
    )[0][0]
    assert contact_id is not None, "no lead (a contact without orders)"
    order = wh.dicts("select * from raw.crm_orders order by order_id desc limit 1")[0]
    item = wh.dicts("select * from raw.crm_order_items order by order_item_id desc limit 1")[0]
    order.update(
        order_id=f"{order['order_id']}-lead",
        contact_id=contact_id,
        status="delivered",
        _loaded_at=loaded,
        _batch_id="lead-order",
    )
    item.update(
        order_item_id=f"{item['order_item_id']}-lead",
        order_id=order["order_id"],
        _loaded_at=loaded,
        _batch_id="lead-order",
    )
    wh.insert("raw.crm_orders", [order])
    wh.insert("raw.crm_order_items", [item])
    return contact_id, order


def rerun_past_date_and_refund(wh: Warehouse, order: dict[str, Any]) -> None:
    """A past day re-delivered (same records, later load) + ``order`` returned (fully
    refunded): its purchase line must leave fct_product_interactions."""
    loaded = next_load(wh)
    day = wh.rows("select min(cast(ordered_at as date)) from raw.crm_orders")[0][0]
    for table, column in (
        ("crm_orders", "ordered_at"),
        ("web_events", "collector_timestamp"),
        # the day's email events too: a key twice in raw, which staging's guard dedupes
        ("crm_email_events", "occurred_at"),
    ):
        rows = wh.dicts(f"select * from raw.{table} where cast({column} as date) = '{day}'")
        for r in rows:
            r.update(_loaded_at=loaded, _batch_id="rerun")
        wh.insert(f"raw.{table}", rows)
    order.update(
        status="returned",
        updated_at=order["updated_at"] + dt.timedelta(days=1),
        _loaded_at=loaded + dt.timedelta(minutes=1),
        _batch_id="refund",
    )
    wh.insert("raw.crm_orders", [order])


def new_identity_link(wh: Warehouse) -> tuple[str, int]:
    """A device of one person logs in as a contact of another: the two merge."""
    a = wh.rows(
        "select n.anonymous_id, n.customer_key from intermediate.int_identity_nodes_resolved n "
        "where n.node_type = 'anon' and n.customer_key in (select customer_key from "
        "intermediate.int_identity_nodes_resolved where node_type = 'contact') "
        "and n.anonymous_id in (select anonymous_id from marts.fct_sessions) "
        "order by n.anonymous_id limit 1"
    )[0]
    b = wh.rows(
        "select n.contact_id from intermediate.int_identity_nodes_resolved n "
        "where n.node_type = 'contact' and n.customer_key <> "
        f"{wh.mark} and n.contact_id in (select contact_id from marts.fct_orders) "
        "order by n.contact_id limit 1",
        (a[1],),
    )[0]
    template = wh.dicts(
        f"select * from raw.web_events where anonymous_id = '{a[0]}' "
        "order by collector_timestamp desc, event_id limit 1"
    )[0]
    template.update(
        event_id="login-link-1",
        event_type="login",
        user_id=str(b[0]),
        product_id=None,
        order_id=None,
        email_contact_id=None,
        collector_timestamp=template["collector_timestamp"] + dt.timedelta(minutes=1),
        _loaded_at=next_load(wh),
        _batch_id="link",
    )
    wh.insert("raw.web_events", [template])
    return a[0], b[0]


# --- the check ----------------------------------------------------------------------------------


def assert_incremental_equals_full(
    wh: Warehouse, run: Callable[..., None], label: str, command: str = "run"
) -> None:
    # cautious: only the data tests of the selected models (the dim and the identity audit
    # are not rebuilt here, so their cross-model tests would compare a stale table)
    run(command, "--select", FACTS, "--indirect-selection", "cautious")
    incremental = wh.state()
    run("run", "--select", FACTS, "--full-refresh")
    full = wh.state()
    assert incremental.keys() == full.keys()
    differ = {t: (len(incremental[t]), len(full[t])) for t in full if incremental[t] != full[t]}
    assert differ == {}, f"after {label}: incremental differs from --full-refresh in {differ}"


def assert_refunded_is_no_buyer(wh: Warehouse, contact_id: str) -> None:
    key = wh.rows(
        f"select customer_key from marts.fct_orders where contact_id = {wh.mark}", (contact_id,)
    )[0][0]
    assert wh.rows(
        "select count(*) filter (where is_purchase), count(*) filter (where is_return), "
        f"sum(net_amount) from marts.fct_orders where customer_key = {wh.mark}",
        (key,),
    ) == [(0, 1, 0.0)]
    assert wh.rows(
        "select count(*) from marts.fct_order_items where is_purchase and customer_key = "
        f"{wh.mark}",
        (key,),
    ) == [(0,)]
    assert wh.rows(
        "select count(*) from marts.fct_product_interactions "
        f"where interaction_type = 'purchase' and customer_key = {wh.mark}",
        (key,),
    ) == [(0,)]


def erase(contact_id: str, env: dict[str, str]) -> None:
    """``python -m privacy erase`` of one contact (the real command, its own process)."""
    truth._run(
        [sys.executable, "-m", "privacy", "erase", "--contact-id", str(contact_id), "--no-compact"],
        env,
    )


def assert_erased(wh: Warehouse, contact_id: str) -> None:
    assert wh.rows(
        f"select count(*) from marts.fct_orders where contact_id = {wh.mark}", (contact_id,)
    ) == [(0,)]
    assert wh.rows(
        "select count(*) from intermediate.int_identity_nodes_resolved "
        f"where contact_id = {wh.mark}",
        (contact_id,),
    ) == [(0,)]


def assert_one_person(wh: Warehouse, anonymous_id: str, contact_id: str) -> None:
    keys = wh.rows(
        "select distinct customer_key from intermediate.int_identity_nodes_resolved "
        f"where anonymous_id = {wh.mark} or contact_id = {wh.mark}",
        (anonymous_id, contact_id),
    )
    assert len(keys) == 1, f"the login did not merge the two persons: {keys}"


# --- DuckDB: the simulated company --------------------------------------------------------------


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    local = tmp_path_factory.mktemp("facts") / "local"
    env = truth._clean_env(local)
    truth.simulate(
        local / "sources",
        env,
        "--customers",
        str(truth.CUSTOMERS),
        "--days",
        str(truth.DAYS),
        "--seed",
        str(truth.SEED),
    )
    truth.ingest(local)
    truth.build(local)
    yield local
    shutil.rmtree(local, ignore_errors=True)


def test_duckdb_facts_incremental_equal_full_refresh(company: Path) -> None:
    wh = Warehouse(duckdb_path=company / "warehouse.duckdb")

    def run(*args: str) -> None:
        truth.dbt(company, *args)

    # (a) a new day, simulated and ingested for real
    truth.simulate(company / "sources", truth._clean_env(company), "--append-days", "1")
    truth.ingest(company)
    assert_incremental_equals_full(wh, run, "a new day")
    # (b) a late event for an old session
    late_event(wh)
    contact_id, order = lead_orders(wh)
    assert_incremental_equals_full(wh, run, "a late event and a lead's first order")
    assert wh.rows(
        "select count(*) from marts.fct_product_interactions p join marts.fct_orders o "
        "on o.customer_key = p.customer_key where p.interaction_type = 'purchase' "
        "and o.contact_id = ?",
        (contact_id,),
    ) == [(1,)]
    # (c) a past date re-run, and the lead's order returned
    rerun_past_date_and_refund(wh, order)
    assert_incremental_equals_full(wh, run, "a re-run of a past date and a refund")
    assert_refunded_is_no_buyer(wh, contact_id)
    key = wh.rows("select customer_key from marts.fct_orders where contact_id = ?", (contact_id,))[
        0
    ][0]
    history = truth._run(
        [
            sys.executable,
            "-c",
            "import datetime as dt; from ml.churn.data import order_history\n"
            "df = order_history([dt.date(2100, 1, 1)], 30)\n"
            "print(sorted(df['customer_key'].astype(str)))",
        ],
        truth._clean_env(company),
    )
    assert key not in history, "a fully refunded customer is in the churn order history"
    # ... nor in the features (no row at any cutoff), the recommender's order lines, and the
    # 720 view counts no purchase for them: they are still a lead
    run(
        "build",
        "--select",
        "customer_features",
        "dim_customer_720",
        "--exclude-resource-type",
        "test",
    )
    assert wh.rows("select count(*) from ml.customer_features where customer_key = ?", (key,)) == [
        (0,)
    ]
    assert wh.rows(
        "select journey_stage, total_revenue from marts.dim_customer_720 where customer_key = ?",
        (key,),
    ) == [("lead", 0.0)]
    lines = truth._run(
        [
            sys.executable,
            "-c",
            "import datetime as dt; from ml.recs.data import load_order_items\n"
            "print(sorted(load_order_items(dt.date(2100, 1, 1))['customer_key'].astype(str)))",
        ],
        truth._clean_env(company),
    )
    assert key not in lines, "a fully refunded customer's order lines reach the recommender"
    # (d) a new identity link merges two persons
    anonymous_id, linked_contact = new_identity_link(wh)
    assert_incremental_equals_full(wh, run, "a new identity link", command="build")
    assert_one_person(wh, anonymous_id, linked_contact)
    run("build", "--select", FACTS, "--indirect-selection", "cautious")
    assert_tests_recorded(wh)
    # (e) an erasure of the merged person
    erase(linked_contact, truth._clean_env(company))
    assert_incremental_equals_full(wh, run, "an erasure", command="build")
    assert_erased(wh, linked_contact)


@pytest.mark.parametrize(
    ("model", "per_bucket", "key"),
    [
        ("intermediate.int_sessions_aggregated", "sessions_events_per_bucket: 2000", "session_id"),
        ("ml.customer_features", "features_customers_per_bucket: 40", "customer_key, cutoff_date"),
    ],
)
def test_duckdb_full_build_in_buckets_equals_one_pass(
    company: Path, model: str, per_bucket: str, key: str
) -> None:
    """A full build runs in buckets of its key at scale (macros/full_build_buckets.sql: a
    device's sessions, a person's features), so that it never spills the whole history to
    disk: the buckets' union must be the rows of one pass, row for row."""
    wh = Warehouse(duckdb_path=company / "warehouse.duckdb")
    name = model.split(".")[1]
    select = ("run", "--select", name, "--full-refresh")
    rows = f"select * from {model} order by {key}"
    one_pass_log = truth.dbt(company, *select)
    one_pass = wh.rows(rows)
    bucketed_log = truth.dbt(company, *select, "--vars", "{" + per_bucket + "}")
    assert f"{name}: bucket" not in one_pass_log
    assert f"{name}: bucket 3 of" in bucketed_log, bucketed_log[-2000:]
    assert len(one_pass) > 100 and wh.rows(rows) == one_pass


# --- Postgres: the hand-made fixture ------------------------------------------------------------


def test_postgres_facts_incremental_equal_full_refresh(postgres_url: str, tmp_path: Path) -> None:
    """Every scenario on Postgres; then, on the warehouse they leave, what a daily build's
    data tests read (one Postgres build serves both: a first build costs a minute)."""
    import subprocess

    import sqlalchemy as sa

    url = sa.make_url(postgres_url)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    create_raw(plain)
    wh = Warehouse(pg_url=plain)
    local = tmp_path / "local"
    env = {k: v for k, v in truth._clean_env(local).items() if k != "DBT_DUCKDB_PATH"}
    env.update(postgres_env(postgres_url, local))

    def dbt(*args: str) -> subprocess.CompletedProcess[str]:
        paths = ["--target-path", str(local / "target"), "--log-path", str(local / "logs")]
        return subprocess.run(
            [str(truth.DBT), *args, "--project-dir", str(truth.PROJECT), "--profiles-dir",
             str(truth.PROJECT), *paths],
            env=env, capture_output=True, text=True, timeout=900, cwd=truth.ROOT,
        )  # fmt: skip

    def run(*args: str) -> None:
        done = dbt(*args)
        assert done.returncode == 0, f"dbt {' '.join(args)} failed:\n{done.stdout[-4000:]}"

    run("build", "--exclude", "tag:needs_scores")
    assert_tests_recorded(wh)
    new_day_by_sql(wh)
    assert_incremental_equals_full(wh, run, "a new day")
    late_event(wh)
    contact_id, order = lead_orders(wh)
    assert_incremental_equals_full(wh, run, "a late event and a lead's first order")
    rerun_past_date_and_refund(wh, order)
    assert_incremental_equals_full(wh, run, "a re-run of a past date and a refund")
    assert_refunded_is_no_buyer(wh, contact_id)
    anonymous_id, linked_contact = new_identity_link(wh)
    assert_incremental_equals_full(wh, run, "a new identity link", command="build")
    assert_one_person(wh, anonymous_id, linked_contact)
    erase(linked_contact, {**truth._clean_env(local), "C720_WAREHOUSE": postgres_url})
    assert_incremental_equals_full(wh, run, "an erasure", command="build")
    assert_erased(wh, linked_contact)
    assert_daily_tests_read_rows_loaded_since_last_tested(wh, dbt, local)


def assert_daily_tests_read_rows_loaded_since_last_tested(
    wh: Warehouse, dbt: Callable[..., Any], local: Path
) -> None:
    """A daily build's data tests of an incremental model read the rows loaded since its last
    tested build (a planted bad row with a new load time fails it, one with an old load time
    is a whole-table test's job), and a failed test does not move the watermark on."""
    watermark = (
        "select tested_through from dbt_state.tested_loads where model_name = 'fct_sessions'"
    )
    # a --full-refresh forgets what was tested (its next tests read the whole table): one
    # daily build to test and record fct_sessions as a day's run leaves it
    done = dbt("build", "--select", "fct_sessions")
    assert done.returncode == 0, done.stdout[-4000:]
    before = wh.rows(watermark)
    assert before, "no tested watermark for fct_sessions"
    # a duplicate of an old session (loaded a day before the watermark, past the 30 min
    # lookback Postgres re-reads): a daily test does not read it, a whole-table test finds it
    duplicate = "(select min(session_id) from marts.fct_sessions)"
    wh.rows(f"insert into marts.fct_sessions select * from marts.fct_sessions "
            f"where session_id = {duplicate} returning session_id")  # fmt: skip
    wh.rows(f"update marts.fct_sessions set last_loaded_at = last_loaded_at - interval '1 day' "
            f"where session_id = {duplicate} returning session_id")  # fmt: skip
    daily = dbt("test", "--select", "fct_sessions")
    assert daily.returncode == 0, daily.stdout[-4000:]
    assert "where (last_loaded_at > cast(" in (
        next((local / "target" / "run").rglob("unique_fct_sessions_session_id.sql")).read_text()
    )
    whole = dbt("test", "--select", "fct_sessions", "--vars", "{test_whole_tables: true}")
    assert whole.returncode == 1 and "unique_fct_sessions_session_id" in whole.stdout
    # the same duplicate loaded after the last tested build: the daily build's test finds it,
    # and keeps the watermark, so the next build tests those rows again
    later = next_load(wh, hours=24)
    wh.rows(f"update marts.fct_sessions set last_loaded_at = {wh.mark} "
            f"where session_id = {duplicate} returning session_id", (later,))  # fmt: skip
    for _ in range(2):
        failed = dbt("build", "--select", "fct_sessions")
        assert failed.returncode == 1 and "unique_fct_sessions_session_id" in failed.stdout
        assert wh.rows(watermark) == before


# --- the contract: a negative total only as a credit note ---------------------------------------


@pytest.mark.parametrize(
    ("status", "total", "quarantined"),
    [
        ("delivered", 10.0, False),
        ("returned", -10.0, False),
        ("delivered", -10.0, True),
        ("cancelled", -1.0, True),
        (None, -1.0, True),
    ],
)
def test_contract_allows_negative_total_only_as_credit_note(
    status: str | None, total: float, quarantined: bool
) -> None:
    import duckdb

    from ingest.contract import crm_tables
    from ingest.raw_store import _value_rules

    orders = next(t for t in crm_tables() if t.name == "orders")
    column = next(c for c in orders.columns if c.name == "total_amount")
    rules = _value_rules(column, "total_amount", dt.datetime(2026, 1, 1), {"status": "status"})
    broken = " or ".join(f"coalesce({cond}, false)" for cond, _ in rules)
    con = duckdb.connect()
    got = con.execute(
        f"select {broken} from (select cast(? as varchar) as status, "
        "cast(? as double) as total_amount)",
        (status, total),
    ).fetchone()[0]
    assert got is quarantined
