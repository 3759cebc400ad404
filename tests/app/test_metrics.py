"""The semantic layer's metrics (dbt semantic models, MetricFlow) say what the marts say.

The hand-made raw fixture of the dbt tests is built by the pipeline's dbt call, two people
get churn scores, the marts are published, and each metric is then asked through
``app.metrics`` (MetricFlow's SQL on the published snapshot) and compared with the same
number computed by hand from the published marts.
"""

from __future__ import annotations

import math
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))
from raw_fixture import create_raw  # noqa: E402

from activate.publish import publish  # noqa: E402
from app import metrics  # noqa: E402
from customer720.dbt import run_dbt  # noqa: E402
from customer720.settings import get_settings  # noqa: E402

AS_OF = date(2026, 3, 1)


@pytest.fixture()
def published(local_dir: Path) -> Path:
    settings = get_settings()
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    create_raw(settings.warehouse_path)
    no_tests = ["--exclude-resource-type", "test"]
    run_dbt("build", selector="marts", as_of=AS_OF, args=no_tests)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        keys = [
            r[0]
            for r in con.execute(
                "select distinct customer_key from marts.fct_orders order by customer_key limit 2"
            ).fetchall()
        ]
        for key, probability in zip(keys, (0.25, 0.75), strict=True):
            con.execute(
                "insert into ml.churn_predictions values (?, ?, ?, 'high', 'recency', 'v1', now())",
                [key, AS_OF, probability],
            )
    run_dbt("build", selector="score_marts", as_of=AS_OF, args=no_tests)
    publish(settings)
    return settings.published


def _sql(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_semantic_layer_is_valid(local_dir: Path) -> None:
    assert metrics.validate(metrics.semantic_manifest()) == []
    names = set(metrics.catalogue()["metric"])
    assert {"revenue", "customers", "churn_risk", "revenue_at_risk"} <= names


def test_metrics_equal_the_marts(published: Path) -> None:
    by_month = metrics.query(
        ["revenue", "purchases", "buyers"], ["metric_time__month"], order_by=["metric_time__month"]
    ).frame
    expected = _sql(
        published,
        """select date_trunc('month', order_date) as month, sum(net_amount),
                  sum(case when is_purchase then 1 else 0 end),
                  count(distinct case when is_purchase then customer_key end)
           from marts.fct_orders group by 1 order by 1""",
    )
    assert len(expected) >= 1
    got = [
        (row.metric_time__month.date(), row.revenue, row.purchases, row.buyers)
        for row in by_month.itertuples()
    ]
    assert [(m.date() if hasattr(m, "date") else m, *rest) for m, *rest in expected] == [
        (m, pytest.approx(r), p, b) for m, r, p, b in got
    ]

    people = metrics.query(["customers", "churn_risk", "revenue_at_risk"]).frame.iloc[0]
    count, risk, at_risk = _sql(
        published,
        """select count(*), avg(churn_probability),
                  sum(revenue_at_risk)
           from marts.dim_customer_720""",
    )[0]
    assert people["customers"] == count
    assert people["churn_risk"] == pytest.approx(0.5) == pytest.approx(risk)
    if at_risk is None:
        assert people["revenue_at_risk"] is None or math.isnan(people["revenue_at_risk"])
    else:
        assert people["revenue_at_risk"] == pytest.approx(at_risk)

    # a misspelt name is refused with the names it may have meant
    with pytest.raises(metrics.MetricsUnavailable, match="revenue"):
        metrics.query(["revenu"])
