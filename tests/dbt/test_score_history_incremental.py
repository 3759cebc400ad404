"""The incremental score histories equal a full refresh, on DuckDB and Postgres.

``customer_churn_score_history``, ``customer_clv_score_history`` and ``fct_model_monitoring``
copy the ML stage's tables (``ml.churn_predictions``, ``ml.clv_predictions``,
``ml.model_monitoring``), which it writes one ``as_of_date`` at a time, replacing the date's
rows (``ml/common/outputs.write``). A build copies only the dates whose row count or newest
``scored_at`` / ``computed_at`` differ (``macros/score_history.sql``). After each change to the
ml tables the incremental build must give the same rows as ``--full-refresh``, and touch only
the dates that changed:

(a) a new scoring date;
(b) a re-run of a past date: new ``scored_at``, another model version, and one customer
    swapped for another (the same row count: only the time shows the change; a naive append
    would keep the old rows beside the new ones);
(c) a re-run of the newest date with fewer customers and the same ``scored_at`` (only the
    count shows it);
(d) a whole date deleted from the ml tables: its rows leave the marts;
(e) an erasure: a person's rows deleted from the ml tables and the marts alike (as
    ``privacy.erasure`` does) - nothing is copied again, the person stays gone.

(c) and (e) run the same SQL as (b) and (d), so Postgres runs (a), (b) and (d), the cases
that exercise its dialect (keeps the suite's time).

The models read nothing but the ml sources, so the warehouse holds only those (rows written
here with engine-neutral SQL); dbt builds just the three models.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_identity_truth as truth  # noqa: E402
from test_dbt_build import dbt, postgres_env  # noqa: E402
from test_facts_incremental import Warehouse  # noqa: E402

MODELS = ("customer_churn_score_history", "customer_clv_score_history", "fct_model_monitoring")
SOURCES = ("churn_predictions", "clv_predictions", "model_monitoring")
DAY1, DAY2, DAY3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)


def scored(day: dt.date, hours: int = 6) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hours))


def delete(wh: Warehouse, table: str, where: str, params: tuple) -> None:
    # `returning`: Warehouse.rows fetches a result on both engines
    wh.rows(f"delete from {table} where {where} returning as_of_date", params)


# --- the ML stage's writes (ml/common/outputs.write: replace the date's rows) -------------------


def write_scores(
    wh: Warehouse,
    day: dt.date,
    customers: list[str],
    scored_at: dt.datetime,
    version: str = "v1",
) -> None:
    """One scoring run of ``day``: churn and CLV scores of ``customers``, and a monitoring
    row per customer (as a feature's PSI), replacing whatever the date held."""
    for table in SOURCES:
        delete(wh, f"ml.{table}", f"as_of_date = {wh.mark}", (day,))
    wh.insert(
        "ml.churn_predictions",
        [
            {
                "customer_key": key,
                "as_of_date": day,
                "churn_probability": (i + 1) / (len(customers) + 2),
                "risk_band": "high" if i % 2 else "low",
                "top_reasons": f"reason {i}",
                "model_version": version,
                "scored_at": scored_at,
            }
            for i, key in enumerate(customers)
        ],
    )
    wh.insert(
        "ml.clv_predictions",
        [
            {
                "customer_key": key,
                "as_of_date": day,
                "clv": 10.0 * (i + 1),
                "expected_purchases": 0.5 * i,
                "horizon_days": 365,
                "model_version": version,
                "scored_at": scored_at,
            }
            for i, key in enumerate(customers)
        ],
    )
    wh.insert(
        "ml.model_monitoring",
        [
            {
                "as_of_date": day,
                "model": "churn",
                "model_version": version,
                "metric": "psi",
                "subject": f"feature_{key}",
                "issue_week": day - dt.timedelta(days=day.weekday()),
                "value": 0.01 * i,
                "is_alert": False,
                "computed_at": scored_at,
            }
            for i, key in enumerate(customers)
        ],
    )


def erase_person(wh: Warehouse, customer_key: str) -> None:
    """What privacy.erasure does to the scores: delete the person's rows everywhere."""
    for table in ("ml.churn_predictions", "ml.clv_predictions") + tuple(
        f"marts.{m}" for m in MODELS[:2]
    ):
        delete(wh, table, f"customer_key = {wh.mark}", (customer_key,))


# --- the check ----------------------------------------------------------------------------------


def batch_dates(target: Path, model: str) -> set[str]:
    """The dates the last build of ``model`` copied or removed (literals in its SQL)."""
    sql = next((target / "compiled").rglob(f"{model}.sql")).read_text()
    return set(re.findall(r"cast\('(\d{4}-\d{2}-\d{2})' as date\)", sql))


def assert_incremental_equals_full(
    wh: Warehouse, run: Callable[..., None], target: Path, label: str, touched: set[dt.date]
) -> None:
    run("build", "--select", *MODELS)
    for model in MODELS:
        assert batch_dates(target, model) == {d.isoformat() for d in touched}, (
            f"after {label}: {model} copied other dates than the changed ones"
        )
    incremental = wh.state()
    run("run", "--select", *MODELS, "--full-refresh")
    full = wh.state()
    assert sorted(incremental) == [f"marts.{m}" for m in sorted(MODELS)]
    differ = {t: (len(incremental[t]), len(full[t])) for t in full if incremental[t] != full[t]}
    assert differ == {}, f"after {label}: incremental differs from --full-refresh in {differ}"


def held(wh: Warehouse, model: str) -> dict[dt.date, set[str]]:
    """customer_key (or subject) per as_of_date in a mart."""
    column = "subject" if model == "fct_model_monitoring" else "customer_key"
    out: dict[dt.date, set[str]] = {}
    for day, key in wh.rows(f"select as_of_date, {column} from marts.{model}"):
        out.setdefault(day, set()).add(key)
    return out


def scenarios(
    wh: Warehouse, run: Callable[..., None], target: Path, every_case: bool = True
) -> None:
    """Each change, then incremental = full refresh. ``every_case=False`` skips (c) and
    (e), whose SQL is the same as (b)'s and (d)'s (the suite runs them on DuckDB): another
    engine needs the cases that exercise its dialect (the date comparison, the literals,
    the marker rows of a deleted date)."""
    customers = [f"c{i}" for i in range(6)]
    write_scores(wh, DAY1, customers, scored(DAY1))
    write_scores(wh, DAY2, customers, scored(DAY2))
    run("build", "--select", *MODELS)  # the first build: a table of everything
    # (a) a new date
    write_scores(wh, DAY3, customers, scored(DAY3))
    assert_incremental_equals_full(wh, run, target, "a new date", {DAY3})
    assert set(held(wh, MODELS[0])) == {DAY1, DAY2, DAY3}
    # (b) a re-run of DAY1 after DAY3: c0 leaves, c9 comes, another model version
    rerun = [*customers[1:], "c9"]
    write_scores(wh, DAY1, rerun, scored(DAY3, hours=9), version="v2")
    assert_incremental_equals_full(wh, run, target, "a re-run of a past date", {DAY1})
    assert held(wh, "customer_churn_score_history")[DAY1] == set(rerun)
    assert held(wh, "fct_model_monitoring")[DAY1] == {f"feature_{k}" for k in rerun}
    assert wh.rows(
        "select distinct model_version from marts.customer_clv_score_history "
        f"where as_of_date = {wh.mark}",
        (DAY1,),
    ) == [("v2",)]
    if every_case:
        # (c) DAY3 scored again in the same second, without two customers
        write_scores(wh, DAY3, customers[:4], scored(DAY3))
        assert_incremental_equals_full(wh, run, target, "a re-run with fewer rows", {DAY3})
        assert held(wh, "customer_clv_score_history")[DAY3] == set(customers[:4])
    # (d) DAY2 deleted from the ml tables
    for table in SOURCES:
        delete(wh, f"ml.{table}", f"as_of_date = {wh.mark}", (DAY2,))
    assert_incremental_equals_full(wh, run, target, "a date deleted", {DAY2})
    for model in MODELS:
        assert set(held(wh, model)) == {DAY1, DAY3}, model
    if every_case:
        # (e) an erasure of c1 (scored on both dates): deleted on both sides, nothing to copy
        erase_person(wh, "c1")
        assert_incremental_equals_full(wh, run, target, "an erasure", set())
        for model in MODELS[:2]:
            assert all("c1" not in keys for keys in held(wh, model).values()), model


# --- the engines --------------------------------------------------------------------------------


def test_duckdb_score_history_incremental_equals_full_refresh(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    env = truth._clean_env(local)
    wh = Warehouse(duckdb_path=local / "warehouse.duckdb")

    def run(*args: str) -> None:
        dbt(list(args), env, tmp_path)

    run("run", "--select", *MODELS)  # creates the empty ml tables (on-run-start)
    scenarios(wh, run, tmp_path / "target")


def test_postgres_score_history_incremental_equals_full_refresh(
    postgres_url: str, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    plain = sa.make_url(postgres_url).set(drivername="postgresql")
    wh = Warehouse(pg_url=plain.render_as_string(hide_password=False))
    local = tmp_path / "local"
    env = {k: v for k, v in truth._clean_env(local).items() if k != "DBT_DUCKDB_PATH"}
    env.update(postgres_env(postgres_url, local))

    def run(*args: str) -> None:
        dbt(list(args), env, tmp_path)

    run("run", "--select", *MODELS)
    scenarios(wh, run, tmp_path / "target", every_case=False)
