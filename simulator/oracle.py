"""How predictable is churn here? The AUC of the true hazard vs. recency alone.

A customer eligible at ``cutoff`` has at least one order before it; the label is
"no non-cancelled order in (cutoff, cutoff + horizon]". The oracle score is the true
probability of that from the latent state at the cutoff (already churned: 1; otherwise
a race between the churn hazard and the order rate). The ML stage reports its model's
AUC next to these two numbers.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from simulator import state

DAY = 86_400


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    label = np.asarray(label, bool)
    pos, neg = label.sum(), (~label).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * neg))


def oracle_scores(out_dir: Path | str, cutoff: date | str, horizon: int = 90) -> pd.DataFrame:
    """One row per eligible person: person_id, churn (the label), oracle (true P(churn)), recency_days.

    Map persons to CRM contacts with truth/contact_persons.parquet to compare with a model.
    """
    out = Path(out_dir)
    cutoff = date.fromisoformat(cutoff) if isinstance(cutoff, str) else cutoff
    meta_path = out / state.STATE_DIR / "meta.json"
    if not meta_path.exists():
        raise FileNotFoundError(
            f"no simulated company in {out}; run `python -m simulator --out {out}` first"
        )
    truth = out / "truth"
    persons = pd.read_parquet(truth / "persons.parquet", columns=["person_id", "churn_date"])
    orders = pd.read_parquet(
        out / state.STATE_DIR / "orders.parquet",
        columns=["person_id", "ordered_sec", "cancelled_sec"],
    )
    snaps = pd.read_parquet(truth / "hazard_snapshots.parquet")
    start = date.fromisoformat(pd.read_json(meta_path, typ="series")["start"])
    end = start + timedelta(days=int(pd.read_json(meta_path, typ="series")["next_day"]) - 1)
    if cutoff + timedelta(days=horizon) > end:
        raise ValueError(
            f"cutoff {cutoff} + horizon {horizon} days goes past the last simulated day {end}; "
            f"pick a cutoff on or before {end - timedelta(days=horizon)} or append more days"
        )
    cut_sec = (cutoff - date(1970, 1, 1)).days * DAY + DAY  # end of the cutoff day
    horizon_sec = cut_sec + horizon * DAY
    valid = orders[orders["cancelled_sec"] < 0]
    before = valid[valid["ordered_sec"] < cut_sec]
    last = before.groupby("person_id")["ordered_sec"].max()
    after = valid[(valid["ordered_sec"] >= cut_sec) & (valid["ordered_sec"] < horizon_sec)]
    people = pd.DataFrame(
        {"person_id": last.index, "recency_days": (cut_sec - last.to_numpy()) / DAY}
    )
    people["churn"] = ~people["person_id"].isin(after["person_id"])

    snaps = snaps[snaps["date"] <= cutoff]
    if snaps.empty:
        raise ValueError(f"no hazard snapshot on or before {cutoff}; pick a later cutoff")
    latest = snaps[snaps["date"] == snaps["date"].max()].set_index("person_id")
    h = latest["hazard"].reindex(people["person_id"]).to_numpy(float)
    lam = (
        latest["order_rate"].reindex(people["person_id"]).to_numpy(float) * 0.97
    )  # ~3 % are cancelled
    # P(no order within the horizon) when churn (rate h) and ordering (rate lam) race.
    total = h + lam
    p_order = np.where(
        total > 0, lam / np.maximum(total, 1e-12) * (1 - np.exp(-total * horizon)), 0.0
    )
    churn_date = persons.set_index("person_id")["churn_date"].reindex(people["person_id"])
    churn_ts = pd.to_datetime(churn_date)
    already = (churn_ts.notna() & (churn_ts <= pd.Timestamp(cutoff))).to_numpy()
    people["oracle"] = np.where(already, 1.0, 1.0 - p_order)
    return people[["person_id", "churn", "oracle", "recency_days"]]


def churn_auc(out_dir: Path | str, cutoff: date | str, horizon: int = 90) -> dict:
    """Oracle and recency AUC for churn at ``cutoff`` in the company simulated in ``out_dir``."""
    cutoff = date.fromisoformat(cutoff) if isinstance(cutoff, str) else cutoff
    people = oracle_scores(out_dir, cutoff, horizon)
    return {
        "cutoff": cutoff.isoformat(),
        "horizon_days": horizon,
        "eligible_customers": int(len(people)),
        "churn_rate": float(people["churn"].mean()) if len(people) else float("nan"),
        "auc_oracle": auc(people["oracle"].to_numpy(), people["churn"].to_numpy()),
        "auc_recency": auc(people["recency_days"].to_numpy(), people["churn"].to_numpy()),
    }
