"""Churn labels and eligibility on hand-made orders (code tests)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from customer720 import warehouse
from ml.churn import data, labels
from ml.common.config import ChurnConfig

CUTOFF = pd.Timestamp("2026-01-01")


def _orders(rows: list[tuple[str, int, str, bool]]) -> pd.DataFrame:
    """(customer, days after CUTOFF, time of day, cancelled) → fct_orders rows."""
    df = pd.DataFrame(rows, columns=["customer_key", "days", "time", "is_cancelled"])
    df["ordered_at"] = [
        CUTOFF + pd.Timedelta(days=d) + pd.Timedelta(t)
        for d, t in zip(df["days"], df["time"], strict=True)
    ]
    df["order_date"] = df["ordered_at"].dt.date
    df["order_id"] = range(1, len(df) + 1)
    df["total_amount"] = 10.0
    df["is_purchase"] = ~df["is_cancelled"]  # the fact's purchase flag (macros/purchases.sql)
    df["is_returned"] = False
    df["updated_at"] = df["ordered_at"]  # cancelled when placed: known at every later cutoff
    return df.drop(columns=["days", "time"])


@pytest.fixture
def hand_orders(local_dir):
    rows = [
        ("exactly_at_h", -10, "12:00:00", False),
        ("exactly_at_h", 90, "00:00:00", False),  # exactly cutoff_at + 90 days
        ("just_after_h", -10, "12:00:00", False),
        ("just_after_h", 90, "00:00:01", False),  # one second too late
        ("one_day_late", -10, "12:00:00", False),
        ("one_day_late", 91, "12:00:00", False),
        ("only_cancelled", -10, "12:00:00", False),
        ("only_cancelled", 30, "12:00:00", True),
        ("at_cutoff_instant", 0, "00:00:00", False),  # known at cutoff_at: history
        ("same_day_later", -10, "12:00:00", False),
        ("same_day_later", 0, "09:00:00", False),  # after cutoff_at: inside the horizon
        ("only_later_that_day", 0, "09:00:00", False),
        ("lapsed", -400, "12:00:00", False),
        ("lapsed", 20, "12:00:00", False),
        ("just_active", -365, "12:00:00", False),
        ("first_after", 5, "12:00:00", False),
        ("cancelled_before", -5, "12:00:00", True),
    ]
    warehouse.replace_rows(_orders(rows), "marts", "fct_orders")
    return local_dir


def test_labels_horizon_boundaries(hand_orders):
    """Cutoff D = the instant D 00:00 (as in ml.customer_features); horizon (D, D + 90d]."""
    cfg = ChurnConfig(horizon_days=90, inactivity_days=365)
    hist = labels.label_history(data.order_history([CUTOFF], 90), cfg).set_index("customer_key")
    assert hist.loc["exactly_at_h", "churned"] == 0  # an order exactly at cutoff + H counts
    assert hist.loc["just_after_h", "churned"] == 1  # one a moment later does not
    assert hist.loc["one_day_late", "churned"] == 1
    assert hist.loc["only_cancelled", "churned"] == 1  # cancelled orders do not count
    assert bool(hist.loc["at_cutoff_instant", "eligible"])
    assert hist.loc["at_cutoff_instant", "churned"] == 1
    assert hist.loc["same_day_later", "churned"] == 0  # the cutoff day's orders are future
    assert "only_later_that_day" not in hist.index  # not yet a customer at the cutoff
    assert not bool(hist.loc["lapsed", "eligible"])  # 400 days quiet > 365
    assert bool(hist.loc["just_active", "eligible"])  # exactly 365 days is still eligible
    assert "first_after" not in hist.index  # no order before the cutoff: no row
    assert "cancelled_before" not in hist.index  # only a cancelled order: no history


def test_history_is_as_known_at_the_cutoff(local_dir):
    """An order cancelled after the cutoff was a purchase at the cutoff (as in the features):
    scoring a past date again after the cancellation gives the same history."""
    orders = _orders(
        [("undone_later", -10, "12:00:00", True), ("undone_before", -10, "12:00:00", True)]
    )
    orders.loc[orders["customer_key"] == "undone_later", "updated_at"] = CUTOFF + pd.Timedelta(
        days=3
    )
    warehouse.replace_rows(orders, "marts", "fct_orders")
    hist = data.order_history([CUTOFF], 90).set_index("customer_key")
    assert hist.loc["undone_later", "n_orders"] == 1
    assert "undone_before" not in hist.index  # cancelled by the cutoff: no purchase


def test_history_columns_for_bgnbd(hand_orders):
    hist = data.order_history([CUTOFF], 90).set_index("customer_key")
    row = hist.loc["lapsed"]
    assert row["frequency"] == 0 and row["age_days"] == 400 and row["recency_span_days"] == 0
    assert row["days_since_last_order"] == 400


def test_horizon_is_configurable(hand_orders, monkeypatch):
    monkeypatch.setenv("C720_CHURN_HORIZON_DAYS", "30")
    cfg = ChurnConfig.from_settings()
    assert cfg.horizon_days == 30
    hist = labels.label_history(data.order_history([CUTOFF], cfg.horizon_days), cfg)
    assert hist.set_index("customer_key").loc["exactly_at_h", "churned"] == 1
    assert hist.set_index("customer_key").loc["same_day_later", "churned"] == 0


def test_labelled_cutoffs_and_splits():
    as_of = dt.date(2026, 6, 30)
    grid = [pd.Timestamp(as_of) - pd.Timedelta(days=30 * k) for k in range(12, -1, -1)]
    labelled = labels.labelled_cutoffs(grid, as_of, 90)
    assert max(labelled) == pd.Timestamp(as_of) - pd.Timedelta(days=90)
    assert len(labelled) == 10
    splits = labels.assign_splits(labelled, ChurnConfig())
    ordered = [splits[c] for c in sorted(labelled, reverse=True)]
    assert ordered[:3] == ["holdout", "calibration", "valid"]
    assert set(ordered[3:]) == {"train"}


def test_training_labels_end_by_the_holdout_cutoff():
    """A fine grid: cutoffs whose label window overlaps the holdout's are purged."""
    as_of = dt.date(2026, 6, 30)
    grid = [pd.Timestamp(as_of) - pd.Timedelta(days=15 * k) for k in range(24, -1, -1)]
    labelled = labels.labelled_cutoffs(grid, as_of, 90)
    splits = labels.assign_splits(labelled, ChurnConfig())
    holdout = max(labelled)
    assert splits[holdout] == "holdout"
    train = [c for c, name in splits.items() if name == "train"]
    assert train and all(c + pd.Timedelta(days=90) <= holdout for c in train)
    purged = [c for c in labelled if c not in splits]
    assert len(purged) == 3  # holdout − 45, −60, −75 days: between valid and holdout − H
    assert {splits[c] for c in labelled if c in splits} == {
        "holdout",
        "calibration",
        "valid",
        "train",
    }


def _split_frame(step_days: int) -> pd.DataFrame:
    """Labelled rows of 40 customers on a grid of ``step_days`` (H = 90), with their splits."""
    as_of = dt.date(2026, 6, 30)
    grid = [pd.Timestamp(as_of) - pd.Timedelta(days=step_days * k) for k in range(30, -1, -1)]
    splits = labels.assign_splits(labels.labelled_cutoffs(grid, as_of, 90), ChurnConfig())
    rows = [(f"c{i}", c, name, i % 2) for c, name in splits.items() for i in range(40)]
    return pd.DataFrame(rows, columns=["customer_key", "cutoff_date", "split", "churned"])


@pytest.mark.parametrize("step_days", [7, 30])
def test_the_booster_fits_no_row_inside_the_holdout_label_window(step_days: int) -> None:
    """The valid cutoff inside the holdout's label window (weekly grid: 14 days before it;
    30-day grid: 60) neither trains nor stops the booster: early stopping is on held-out
    customers of the training cutoffs, whose label windows end by the holdout cutoff."""
    from ml.churn.dataset import _early_stopping_split

    frame = _split_frame(step_days)
    valid_cutoff = frame.loc[frame["split"] == "valid", "cutoff_date"].iloc[0]
    out = _early_stopping_split(frame, seed=0, horizon_days=90)
    holdout = out.loc[out["split"] == "holdout", "cutoff_date"].min()
    assert valid_cutoff + pd.Timedelta(days=90) > holdout
    assert set(out.loc[out["cutoff_date"] == valid_cutoff, "split"]) == {"purged"}
    fit = out[out["split"].isin(["train", "valid"])]
    assert (fit["cutoff_date"] + pd.Timedelta(days=90) <= holdout).all()
    assert set(fit["split"]) == {"train", "valid"}
    held = set(fit.loc[fit["split"] == "valid", "customer_key"])
    assert held and held.isdisjoint(fit.loc[fit["split"] == "train", "customer_key"])
    for name in ("holdout", "calibration"):
        assert out[out["split"] == name].equals(frame[frame["split"] == name])


def test_a_valid_cutoff_before_the_holdout_label_window_still_fits() -> None:
    """A grid as coarse as the horizon (90-day steps): no cutoff lies inside the holdout's
    label window, and the valid cutoff's rows train and stop the booster as before."""
    from ml.churn.dataset import _early_stopping_split

    frame = _split_frame(90)
    out = _early_stopping_split(frame, seed=0, horizon_days=90)
    assert "purged" not in set(out["split"])
    valid_cutoff = frame.loc[frame["split"] == "valid", "cutoff_date"].iloc[0]
    assert set(out.loc[out["cutoff_date"] == valid_cutoff, "split"]) == {"train", "valid"}


def test_calibration_and_validation_spend_no_trainable_cutoff():
    """CDNOW's grid (91-day steps, H = 182): one cutoff lies inside the holdout's label
    window; calibration and validation share it, and every cutoff whose label window ends
    by the holdout cutoff trains."""
    as_of = dt.date(1998, 7, 1)
    grid = [pd.Timestamp(as_of) - pd.Timedelta(days=91 * k) for k in range(5, -1, -1)]
    labelled = labels.labelled_cutoffs(grid, as_of, 182)
    splits = labels.assign_splits(labelled, dataclasses.replace(ChurnConfig(), horizon_days=182))
    by_date = {c.date().isoformat(): name for c, name in splits.items()}
    assert by_date == {
        "1997-12-31": "holdout",
        "1997-10-01": "calibration",  # shared with validation (dataset: valid+calibration)
        "1997-07-02": "train",
        "1997-04-02": "train",
    }


def test_too_few_cutoffs_is_an_actionable_error():
    with pytest.raises(ValueError, match="at least 2 labelled cutoffs"):
        labels.assign_splits([pd.Timestamp("2026-01-01")], ChurnConfig())


def test_no_engagement_label_keeps_engaged_non_buyers_out_of_churn(hand_orders, monkeypatch):
    """C720_CHURN_LABEL=no_purchase_no_engagement: a web session or email open/click in the
    window means "not churned"; an email merely sent, or engagement outside it, does not."""
    touch = pd.DataFrame(
        {
            "customer_key": [
                "one_day_late",
                "lapsed",
                "only_cancelled",
                "first_after",
                "cancelled_before",
            ],
            "occurred_at": [CUTOFF + pd.Timedelta(days=d) for d in (40, 10, 30, 120, -3)],
            "touchpoint_type": [
                "web_session",
                "email_open",
                "email_sent",
                "email_click",
                "web_session",
            ],
        }  # fmt: skip
    )
    warehouse.replace_rows(touch, "marts", "fct_touchpoints")
    monkeypatch.setenv("C720_CHURN_LABEL", "no_purchase_no_engagement")
    cfg = ChurnConfig.from_settings()
    assert cfg.label == "no_purchase_no_engagement"
    plain = labels.churn_labels([CUTOFF], ChurnConfig(horizon_days=90)).set_index("customer_key")
    both = labels.churn_labels([CUTOFF], cfg).set_index("customer_key")
    assert list(both.index) == list(plain.index)  # same eligible rows
    assert plain.loc["one_day_late", "churned"] == 1
    assert both.loc["one_day_late", "churned"] == 0  # visited the site in the window
    assert both.loc["only_cancelled", "churned"] == 1  # an email sent is not engagement
    assert both.loc["just_after_h", "churned"] == 1  # no touchpoint at all
    changed = plain["churned"] != both["churned"]
    assert set(changed[changed].index) == {"one_day_late"}
    monkeypatch.setenv("C720_CHURN_LABEL", "maybe")
    with pytest.raises(ValueError, match="C720_CHURN_LABEL must be one of"):
        ChurnConfig.from_settings()
