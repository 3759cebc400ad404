"""Customer lifetime value (ml/clv): the model beats the historical average on held-out
customers, scores every eligible customer for the horizon, and its pieces behave."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from customer720 import warehouse
from ml.clv import gamma_gamma
from ml.clv.labels import label_window


def test_gamma_gamma_recovers_the_spend_of_a_known_population() -> None:
    """Order values drawn from the model itself: the fit finds the population mean and
    shrinks a one-order customer's value towards it more than a ten-order one's."""
    rng = np.random.default_rng(3)
    p, q, v = 6.0, 4.0, 15.0
    n = 4000
    nu = rng.gamma(q, 1.0 / v, n)
    x = rng.integers(1, 11, n)
    m = np.array([rng.gamma(p, 1.0 / nu[i], x[i]).mean() for i in range(n)])
    fitted = gamma_gamma.fit(x, m)
    population = p * v / (q - 1)
    assert fitted.p * fitted.v / (fitted.q - 1) == pytest.approx(population, rel=0.1)
    one, ten = gamma_gamma.expected_spend(fitted, np.array([1, 10]), np.array([200.0, 200.0]))
    assert population < one < ten < 200.0


def test_the_label_window_is_what_the_history_holds() -> None:
    """The horizon when the history holds it; a year of history (the demo) gives half a
    year; a cutoff grid too short for the horizon gives the longest window that still
    leaves two labelled cutoffs."""
    as_of = dt.date(2024, 12, 30)
    grid = [pd.Timestamp(as_of) - pd.Timedelta(days=30 * k) for k in range(12, -1, -1)]
    assert label_window(grid, as_of, 90, dt.date(2024, 1, 1)) == 90
    assert label_window(grid, as_of, 365, dt.date(2024, 1, 1)) == 182
    assert label_window(grid, as_of, 365, dt.date(2021, 1, 1)) == 330  # 12 × 30 back, one step
    with pytest.raises(ValueError, match="at least 2 feature cutoffs"):
        label_window(grid[-2:], as_of, 365, None)


def test_clv_beats_the_historical_average_on_held_out_customers(synthetic_wh: dict) -> None:
    from ml.clv.score import score_clv
    from ml.clv.train import train_clv

    summary = train_clv(synthetic_wh["as_of"])
    ours, average = summary["metrics"]["lightgbm"], summary["metrics"]["historical_average"]
    print("CLV holdout:", summary["metrics"], "label window", summary["label_days"])
    assert summary["rows"]["holdout"] >= 50
    assert ours["spearman"] > average["spearman"] + 0.1
    assert ours["poisson_deviance"] < average["poisson_deviance"]
    assert 0.67 < ours["total_ratio"] < 1.5  # the total is about right, not only the order
    assert summary["gates_passed"] and summary["champion"] == summary["version"]
    assert "BG/NBD + Gamma-Gamma" in Path(summary["report"]).read_text()

    scored = score_clv(synthetic_wh["as_of"])
    rows = warehouse.query_df("select * from ml.clv_predictions")
    eligible = warehouse.query_df(
        "select count(distinct customer_key) as n from marts.fct_orders "
        "where not is_cancelled and ordered_at <= timestamp '2026-06-30 00:00:00' "
        "and ordered_at > timestamp '2025-06-30 00:00:00'"
    )["n"].iloc[0]
    assert scored["rows"] == len(rows) == eligible == rows["customer_key"].nunique()
    assert (rows["clv"] >= 0).all() and (rows["horizon_days"] == 365).all()
    assert set(rows["model_version"]) == {summary["version"]}
    # scoring the date again replaces its rows
    score_clv(synthetic_wh["as_of"])
    assert len(warehouse.query_df("select * from ml.clv_predictions")) == len(rows)
