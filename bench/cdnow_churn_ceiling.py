"""How high can any model go on CDNOW churn at cutoff 1997-12-31 (26-week horizon)?

An optimistic ceiling for the pipeline's CDNOW figure: models fitted **on the holdout
cutoff's own rows** (5-fold cross-validation, so no shift between training and holdout
cutoffs, which the pipeline has to bear), from richer purchase features than the dbt model
has — purchase days and spend in each of the four quarters before the cutoff, the mean,
longest and last gap between purchase days, recency over the mean gap, the first order's
amount, plus RFM and tenure. CDNOW has nothing but purchases (customer, date, CDs, dollars).

    .venv/bin/python bench/cdnow_churn_ceiling.py [--file ../shared/data/cdnow/CDNOW_master.txt]

Label as in the pipeline: churn = no purchase in (cutoff, cutoff + 182 days], for every
customer with a purchase on or before the cutoff (all 23,570 bought in Q1 1997).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
CDNOW = ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"


def features(df: pd.DataFrame, cut: pd.Timestamp, horizon: int) -> tuple[pd.DataFrame, np.ndarray]:
    hist = df[df.date <= cut]
    fut = df[(df.date > cut) & (df.date <= cut + pd.Timedelta(days=horizon))]
    g = hist.groupby("id")
    f = pd.DataFrame(
        {"first": g.date.min(), "last": g.date.max(), "days": g.date.nunique(),
         "orders": g.size(), "cds": g.n.sum(), "amt": g.amt.sum()}
    )  # fmt: skip
    f["recency"] = (cut - f["last"]).dt.days
    f["tenure"] = (cut - f["first"]).dt.days
    for q, (a, b) in enumerate([(0, 91), (91, 182), (182, 273), (273, 366)]):
        w = hist[
            (hist.date > cut - pd.Timedelta(days=b)) & (hist.date <= cut - pd.Timedelta(days=a))
        ]
        f[f"days_q{q}"] = w.groupby("id").date.nunique().reindex(f.index).fillna(0)
        f[f"amt_q{q}"] = w.groupby("id").amt.sum().reindex(f.index).fillna(0)
    d = hist.drop_duplicates(["id", "date"]).sort_values(["id", "date"])
    d["gap"] = d.groupby("id").date.diff().dt.days
    f["gap_mean"] = d.groupby("id").gap.mean()
    f["gap_max"] = d.groupby("id").gap.max()
    f["gap_last"] = d.groupby("id").gap.last()
    f["recency_over_gap"] = f["recency"] / f["gap_mean"]
    f["first_amt"] = hist.sort_values("date").groupby("id").amt.first()
    churn = (~f.index.isin(fut.id.unique())).astype(int)
    return f.drop(columns=["first", "last"]), churn


def cv_auc(fit_predict, X: pd.DataFrame, y: np.ndarray) -> float:
    scores = np.zeros(len(X))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        scores[te] = fit_predict(X.iloc[tr], y[tr], X.iloc[te])
    return float(roc_auc_score(y, scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=CDNOW)
    parser.add_argument("--cutoff", default="1997-12-31")
    parser.add_argument("--horizon-days", type=int, default=182)
    args = parser.parse_args()
    df = pd.read_csv(args.file, sep=r"\s+", header=0, names=["id", "date", "n", "amt"])
    df["date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
    X, y = features(df, pd.Timestamp(args.cutoff), args.horizon_days)
    print(f"{len(X):,} customers, churn rate {y.mean():.3f}")
    print(f"recency alone: {roc_auc_score(y, X['recency']):.4f}")
    for params in (
        {"learning_rate": 0.03, "num_leaves": 7, "min_data_in_leaf": 100},
        {"learning_rate": 0.03, "num_leaves": 15, "min_data_in_leaf": 50},
        {"learning_rate": 0.02, "num_leaves": 4, "min_data_in_leaf": 200},
    ):
        full = {"objective": "binary", "verbosity": -1, "num_threads": 1, "seed": 0, **params}

        def gbm(a, b, c, full=full):
            return lgb.train(full, lgb.Dataset(a, b), num_boost_round=200).predict(c)

        print(f"LightGBM {params}, 200 trees: 5-fold CV {cv_auc(gbm, X, y):.4f}")
    logs = np.log1p(X.fillna(-1).clip(lower=0))

    def logistic(a, b, c):
        return LogisticRegression(max_iter=2000).fit(a, b).predict_proba(c)[:, 1]

    print(f"logistic regression on log features: 5-fold CV {cv_auc(logistic, logs, y):.4f}")


if __name__ == "__main__":
    main()
