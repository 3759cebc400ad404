"""Metrics: churn classification (ranking + calibration) and recommendation ranking."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)


# --------------------------------------------------------------------------- churn
def top_decile_lift(y: np.ndarray, score: np.ndarray, fraction: float = 0.1) -> float:
    """Positive rate among the top ``fraction`` by score, divided by the overall rate."""
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    if len(y) == 0 or y.mean() == 0:
        return float("nan")
    n = max(1, int(math.ceil(len(y) * fraction)))
    order = np.argsort(-score, kind="mergesort")  # stable: ties keep input order
    return float(y[order[:n]].mean() / y.mean())


def calibration_curve(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> dict[str, list]:
    """Equal-width bins on [0, 1]: mean predicted, observed rate and count per non-empty bin."""
    y = np.asarray(y, dtype=float)
    prob = np.clip(np.asarray(prob, dtype=float), 0, 1)
    bins = np.minimum((prob * n_bins).astype(int), n_bins - 1)
    out: dict[str, list] = {"mean_predicted": [], "observed_rate": [], "count": []}
    for b in range(n_bins):
        m = bins == b
        if m.any():
            out["mean_predicted"].append(float(prob[m].mean()))
            out["observed_rate"].append(float(y[m].mean()))
            out["count"].append(int(m.sum()))
    return out


def expected_calibration_error(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> float:
    curve = calibration_curve(y, prob, n_bins)
    n = sum(curve["count"])
    if n == 0:
        return float("nan")
    return float(
        sum(
            c * abs(p - o)
            for p, o, c in zip(
                curve["mean_predicted"], curve["observed_rate"], curve["count"], strict=True
            )
        )
        / n
    )


def ranking_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """Metrics that need only an ordering (valid for any score, e.g. recency in days)."""
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return {
            "roc_auc": float("nan"),
            "pr_auc": float("nan"),
            "top_decile_lift": top_decile_lift(y, score),
        }
    return {
        "roc_auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
        "top_decile_lift": top_decile_lift(y, score),
    }


def classification_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Ranking + probability metrics for calibrated probabilities."""
    y = np.asarray(y, dtype=int)
    prob = np.clip(np.asarray(prob, dtype=float), 1e-6, 1 - 1e-6)
    out = ranking_metrics(y, prob)
    out.update(
        brier=float(brier_score_loss(y, prob)),
        log_loss=float(log_loss(y, prob, labels=[0, 1])),
        ece=expected_calibration_error(y, prob),
        base_rate=float(y.mean()) if len(y) else float("nan"),
        mean_predicted=float(prob.mean()) if len(y) else float("nan"),
        n=int(len(y)),
    )
    return out


# --------------------------------------------------------------------------- recommendations
def precision_at_k(recommended: Sequence, relevant: set, k: int) -> float:
    return sum(1 for r in recommended[:k] if r in relevant) / k if k else 0.0


def recall_at_k(recommended: Sequence, relevant: set, k: int) -> float:
    if not relevant:
        return 0.0
    return len(set(recommended[:k]) & relevant) / len(relevant)


def average_precision_at_k(recommended: Sequence, relevant: set, k: int) -> float:
    """AP@k = sum over hit positions i<=k of precision@i, divided by min(|relevant|, k)."""
    if not relevant:
        return 0.0
    hits, total, seen = 0, 0.0, set()
    for i, item in enumerate(recommended[:k], start=1):
        if item in relevant and item not in seen:
            hits += 1
            total += hits / i
        seen.add(item)
    return total / min(len(relevant), k)


def ndcg_at_k(recommended: Sequence, relevant: set, k: int) -> float:
    """Binary-relevance NDCG@k with the log2(position + 1) discount."""
    if not relevant:
        return 0.0
    seen: set = set()
    dcg = 0.0
    for i, item in enumerate(recommended[:k], start=1):
        if item in relevant and item not in seen:
            dcg += 1.0 / math.log2(i + 1)
        seen.add(item)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def recommendation_metrics(
    recommended: dict[str, Sequence],
    truth: dict[str, set],
    k: int,
    candidates: dict[str, set] | None = None,
) -> dict[str, float]:
    """Mean MAP@k, Recall@k, NDCG@k, Precision@k over customers with ≥1 relevant item.

    ``candidates`` (optional): the full candidate set per customer; adds candidate_recall =
    share of relevant items that the candidate generators found at all.
    """
    users = [u for u, rel in truth.items() if rel]
    if not users:
        return {
            "map_at_k": float("nan"),
            "recall_at_k": float("nan"),
            "ndcg_at_k": float("nan"),
            "precision_at_k": float("nan"),
            "n_users": 0,
            "k": k,
        }
    recs = [list(recommended.get(u, [])) for u in users]
    out = {
        "map_at_k": float(
            np.mean(
                [average_precision_at_k(r, truth[u], k) for u, r in zip(users, recs, strict=True)]
            )
        ),
        "recall_at_k": float(
            np.mean([recall_at_k(r, truth[u], k) for u, r in zip(users, recs, strict=True)])
        ),
        "ndcg_at_k": float(
            np.mean([ndcg_at_k(r, truth[u], k) for u, r in zip(users, recs, strict=True)])
        ),
        "precision_at_k": float(
            np.mean([precision_at_k(r, truth[u], k) for u, r in zip(users, recs, strict=True)])
        ),
        "n_users": len(users),
        "k": k,
    }
    if candidates is not None:
        found = sum(len(truth[u] & candidates.get(u, set())) for u in users)
        out["candidate_recall"] = float(found / sum(len(truth[u]) for u in users))
    return out


def _weighted_auc(y_sorted: np.ndarray, group: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC-AUC for each row of weights ``w`` (n_boot × n, rows in score order; ``group``:
    index of each row's distinct score, ties share a group): Mann-Whitney with weights."""
    n_groups = int(group[-1]) + 1
    pos = np.zeros((w.shape[0], n_groups))
    neg = np.zeros((w.shape[0], n_groups))
    for g_w, mask in ((pos, y_sorted == 1), (neg, y_sorted == 0)):
        np.add.at(g_w.T, group[mask], w[:, mask].T)
    below = np.cumsum(neg, axis=1) - neg
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    return (pos * (below + 0.5 * neg)).sum(axis=1) / np.maximum(n_pos * n_neg, 1e-12)


def paired_auc_difference(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int = 42, n_boot: int = 1000
) -> dict[str, float | list[float]]:
    """ROC-AUC(a) − ROC-AUC(b) on the same rows with a 95 % paired bootstrap interval (the
    rows are resampled with replacement, both scores on the same resample)."""
    y = np.asarray(y, dtype=int)
    rng = np.random.default_rng(seed)
    diffs = []
    prepared = []
    for s in (np.asarray(a, dtype=float), np.asarray(b, dtype=float)):
        order = np.argsort(s, kind="mergesort")
        sorted_s = s[order]
        group = np.concatenate([[0], np.cumsum(sorted_s[1:] != sorted_s[:-1])])
        prepared.append((order, y[order], group))
    point = float(roc_auc_score(y, a) - roc_auc_score(y, b))
    batch = max(1, 2_000_000 // max(len(y), 1))
    for lo in range(0, n_boot, batch):
        m = min(batch, n_boot - lo)
        counts = np.stack(
            [np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)) for _ in range(m)]
        ).astype(float)
        auc = [_weighted_auc(ys, g, counts[:, order]) for order, ys, g in prepared]
        diffs.append(auc[0] - auc[1])
    d = np.concatenate(diffs)
    return {
        "difference": point,
        "ci95": [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))],
        "n_boot": n_boot,
    }


def auc_interval(
    y: np.ndarray, score: np.ndarray, clusters: np.ndarray, seed: int = 42, n_boot: int = 400
) -> list[float]:
    """95 % bootstrap interval of ROC-AUC, resampling whole clusters (e.g. customers scored
    on several days of a week: their rows are not independent, so rows are not resampled
    one by one)."""
    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        return [float("nan"), float("nan")]
    s = np.asarray(score, dtype=float)
    codes, n_clusters = _codes(clusters)
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    group = np.concatenate([[0], np.cumsum(sorted_s[1:] != sorted_s[:-1])])
    rng = np.random.default_rng(seed)
    out = []
    batch = max(1, 2_000_000 // max(len(y), 1))
    for lo in range(0, n_boot, batch):
        m = min(batch, n_boot - lo)
        picks = np.stack(
            [
                np.bincount(rng.integers(0, n_clusters, n_clusters), minlength=n_clusters)
                for _ in range(m)
            ]
        ).astype(float)
        out.append(_weighted_auc(y[order], group, picks[:, codes[order]]))
    a = np.concatenate(out)
    return [float(np.quantile(a, 0.025)), float(np.quantile(a, 0.975))]


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes 0..n-1 of ``values`` and n."""
    uniques, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return codes, len(uniques)


# The value metrics regression_metrics returns (besides the row count), in report order.
REGRESSION_METRICS = (
    "spearman",
    "poisson_deviance",
    "mae",
    "rmse",
    "total_ratio",
    "top_decile_share",
)


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Value predictions against realised values: Spearman rank correlation (who is worth
    more), mean Poisson deviance (how far off per customer, for a prediction of *expected*
    revenue: a proper score of a mean), MAE and RMSE, the calibration of totals (sum of
    predictions / realised sum; 1 = the total is right) and the share of the realised
    revenue held by the top decile by prediction. MAE is lowest at the median, which for
    revenue that is 0 for most customers is about 0: it rewards predicting little."""
    from scipy.stats import spearmanr
    from sklearn.metrics import mean_poisson_deviance

    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    if len(y) == 0:
        return {k: float("nan") for k in REGRESSION_METRICS}
    spearman = (
        float(spearmanr(y, pred).statistic) if np.ptp(y) > 0 and np.ptp(pred) > 0 else float("nan")
    )
    k = max(1, int(round(len(y) * 0.1)))
    top = np.argsort(-pred, kind="mergesort")[:k]
    total = float(y.sum())
    return {
        "spearman": spearman,
        # a 0 prediction for a customer who then buys is infinitely wrong: floor it
        "poisson_deviance": float(mean_poisson_deviance(y, np.clip(pred, 1e-6, None))),
        "mae": float(np.mean(np.abs(y - pred))),
        "rmse": float(np.sqrt(np.mean((y - pred) ** 2))),
        "total_ratio": float(pred.sum() / total) if total > 0 else float("nan"),
        "top_decile_share": float(y[top].sum() / total) if total > 0 else float("nan"),
        "rows": int(len(y)),
    }
