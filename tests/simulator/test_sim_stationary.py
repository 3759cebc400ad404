"""A stationary company (``SimulationConfig.stationary``): steady through its simulated days,
with two years of history before them; the same people as without it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sim_helpers import truth

from simulator import SimulationConfig, append, generate, state

CUSTOMERS, DAYS, SEED, START = 2000, 365, 5, dt.date(2024, 1, 1)
STEP = 28  # days between the cutoffs the figures are taken at


def _company(out: Path, stationary: bool) -> Path:
    generate(SimulationConfig(customers=CUSTOMERS, days=DAYS, seed=SEED, start=START, out=out,
                              stationary=stationary))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _company(tmp_path_factory.mktemp("stationary"), True)


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _company(tmp_path_factory.mktemp("default"), False)


def _figures(out: Path) -> pd.DataFrame:
    """Per cutoff after START (every STEP days, the last one a horizon of 90 days before
    the end): CRM persons signed up and not churned, the eligible (a purchase in the 365
    days before, as the churn model's eligibility) and the share of those already churned."""
    persons = truth(out, "persons")
    persons = persons[persons["has_contact"]].set_index("person_id")
    signup = pd.to_datetime(persons["signup_date"])
    churned = pd.to_datetime(persons["churn_date"])
    orders = pd.read_parquet(
        out / state.STATE_DIR / "orders.parquet",
        columns=["person_id", "ordered_sec", "cancelled_sec"],
    )
    orders = orders[orders["cancelled_sec"] < 0]
    ordered = pd.to_datetime(orders["ordered_sec"], unit="s")
    rows = []
    first = START + dt.timedelta(days=STEP)
    for day in pd.date_range(first, START + dt.timedelta(days=DAYS - 91), freq=f"{STEP}D"):
        window = (ordered < day) & (ordered >= day - pd.Timedelta(days=365))
        eligible = orders.loc[window, "person_id"].unique()
        gone = churned.reindex(eligible) < day
        alive = (signup <= day) & ~(churned <= day)
        rows.append({"cutoff": day.date(), "alive": int(alive.sum()),
                     "eligible": len(eligible), "gone_share": float(gone.mean())})  # fmt: skip
    return pd.DataFrame(rows)


def test_population_is_steady(steady: Path, default: Path) -> None:
    """Steady: as many CRM persons and eligible customers at every cutoff (within 8 % of
    their mean) and the same share of the eligible already gone (within 0.06). Without
    the mode the history starts at START, so the eligible pile up and age."""
    figures = _figures(steady)
    print(figures.to_string(index=False))
    for column in ("alive", "eligible"):
        values = figures[column].to_numpy(float)
        assert np.abs(values / values.mean() - 1).max() < 0.08, (column, figures)
    assert np.ptp(figures["gone_share"]) < 0.06, figures
    young = _figures(default)
    assert young["eligible"].iloc[-1] > 1.3 * young["eligible"].iloc[0], young
    assert np.ptp(young["gone_share"]) > 0.15, young


def _december_over_june(out: Path) -> float:
    """Orders placed in December 2024 per order placed in June 2024."""
    ordered = pd.read_parquet(out / state.STATE_DIR / "orders.parquet", columns=["ordered_sec"])
    month = pd.to_datetime(ordered["ordered_sec"], unit="s").dt.to_period("M").astype(str)
    counts = month.value_counts()
    return counts["2024-12"] / counts["2024-06"]


def test_no_season(steady: Path, default: Path) -> None:
    """The default company sells about twice as much in December as in June; the
    stationary one as much (within noise and its 30 days against 31)."""
    assert 0.85 < _december_over_june(steady) < 1.2
    assert _december_over_june(default) > 1.6


def test_history_before_start_and_the_same_people(steady: Path, default: Path) -> None:
    summary = pd.read_json(steady / "simulation.json", typ="series")
    assert (summary["start"], summary["days"], summary["end"]) == ("2024-01-01", 365, "2024-12-30")
    assert summary["stationary"] and summary["history_start"] == "2022-01-01"
    folders = sorted(p.name for p in (steady / "events").glob("date=*"))
    assert folders[0] == "date=2022-01-01" and folders[-1] == "date=2024-12-30"
    assert "stationary" not in pd.read_json(default / "simulation.json", typ="series")
    # the same people (traits, contacts) as without the mode; only their timing differs
    a, b = truth(steady, "persons"), truth(default, "persons")
    assert a["persona"].equals(b["persona"]) and a["engagement_mean"].equals(b["engagement_mean"])
    assert not a["signup_date"].equals(b["signup_date"])


def test_append_continues_a_stationary_company(tmp_path: Path) -> None:
    out = tmp_path / "small"
    config = SimulationConfig(customers=200, days=20, seed=3, out=out, stationary=True)
    generate(config)
    summary = append(out, 3)
    assert (summary["start"], summary["days"], summary["end"]) == ("2024-01-01", 23, "2024-01-23")
    assert summary["history_start"] == "2022-01-01"
