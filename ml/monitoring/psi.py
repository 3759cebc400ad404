"""Population stability (PSI) against reference distributions kept with each model version.

At training time :func:`reference` bins every feature of the model matrix (and the model's
scores) on the reference rows: numeric features on their deciles (edges from the
reference, so each bin holds about a tenth of it; ties merge bins), categorical features
on their categories, and a bin of its own for missing values. Only the bins and their
shares are stored (``reference.json`` beside the model): monitoring never reads the
training data again.

PSI = Σ (p_now − p_ref) · ln(p_now / p_ref) over the bins, shares floored at
:data:`FLOOR` so an empty bin does not make it infinite. The usual reading: < 0.1 stable,
0.1–0.25 moderate shift, > 0.25 a shift worth acting on (the gate's default threshold).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

N_BINS = 10
FLOOR = 1e-4  # share given to an empty bin (PSI is undefined at 0)
MISSING = "__missing__"


def _numeric_bins(values: np.ndarray) -> dict[str, Any]:
    """Decile edges; a value holding more than a bin's share (0 revenue in 30 days, no
    ticket) gets a bin of its own and the deciles are taken over the other values, so that
    a shift among the buyers is not lost in one wide bin beside a mass of zeros."""
    v = values[np.isfinite(values)]
    if not len(v):
        return {"kind": "numeric", "edges": []}
    levels, n = np.unique(v, return_counts=True)
    inner = np.linspace(0, 1, N_BINS + 1)[1:-1]
    mode = levels[np.argmax(n)]
    if n.max() / len(v) > 1 / N_BINS and len(levels) > 1:
        rest = v[v != mode]
        edges = np.unique(np.concatenate([[mode], np.quantile(rest, inner)]))
        if mode < rest.max():  # the mode's bin is (previous edge, mode]: close it below too
            below = levels[levels < mode]
            edges = np.unique(np.concatenate([edges, below[-1:]]))
    else:
        edges = np.unique(np.quantile(v, inner))
    return {"kind": "numeric", "edges": [float(e) for e in edges]}


def _numeric_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts per bin: (-inf, e0], (e0, e1], …, (e_last, inf), then missing."""
    finite = np.isfinite(values)
    idx = np.searchsorted(np.asarray(edges, dtype=float), values[finite], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    return np.append(counts, float((~finite).sum()))


def _categorical_counts(values: pd.Series, categories: list[str]) -> np.ndarray:
    """Counts per category, then one bin for other (unseen) values, then missing."""
    text = values.astype(object)
    missing = text.isna().to_numpy()
    # -1 for a value not among the categories (pandas deprecates a Categorical built with them)
    codes = pd.Index(categories).get_indexer(text[~missing].astype(str))
    counts = np.bincount(codes[codes >= 0], minlength=len(categories)).astype(float)
    other = float((codes < 0).sum())
    return np.concatenate([counts, [other, float(missing.sum())]])


def _as_float(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def counts(values: pd.Series, bins: dict[str, Any]) -> np.ndarray:
    """The counts of ``values`` in ``bins`` (one of :func:`reference`'s entries)."""
    if bins["kind"] == "categorical":
        return _categorical_counts(values, bins["categories"])
    return _numeric_counts(_as_float(values), bins["edges"])


def bin_column(values: pd.Series) -> dict[str, Any]:
    """The bins of one column and its shares in them (a reference entry)."""
    if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
        categories = sorted({str(v) for v in values.dropna().astype(str)})
        bins: dict[str, Any] = {"kind": "categorical", "categories": categories}
    else:
        bins = _numeric_bins(_as_float(values))
    n = counts(values, bins)
    bins["shares"] = [float(x) for x in n / max(n.sum(), 1.0)]
    bins["rows"] = int(n.sum())
    return bins


def reference(
    matrix: pd.DataFrame, scores: np.ndarray, cutoffs: pd.Series | None = None
) -> dict[str, Any]:
    """Reference distributions of every model feature (matrix columns) and of the scores.

    With ``cutoffs`` (each row's cutoff date) each entry also keeps ``training_psi``: the
    PSI between the rows of the oldest and of the newest training cutoff, in these bins.
    Some features move with the calendar by nature (days since the first order in a young
    company, a 90-day email count with the campaign calendar); a shift no larger than the
    one the training data itself spans is one the model was trained across, so monitoring
    alerts on a feature only above max(the PSI limit, its training_psi)."""
    score = pd.Series(np.asarray(scores, dtype=float), index=matrix.index)
    columns = {str(c): matrix[c] for c in matrix.columns} | {"__score__": score}
    entries = {name: bin_column(values) for name, values in columns.items()}
    if cutoffs is not None and cutoffs.nunique() >= 2:
        c = pd.to_datetime(cutoffs).to_numpy()
        oldest, newest = c == c.min(), c == c.max()
        for name, values in columns.items():
            bins = entries[name]
            first = counts(values[oldest], bins)
            entries[name]["training_psi"] = psi(
                first / max(first.sum(), 1.0), counts(values[newest], bins)
            )
    return {
        "bins": N_BINS,
        "rows": int(len(matrix)),
        "features": {k: v for k, v in entries.items() if k != "__score__"},
        "score": entries["__score__"],
    }


def psi(expected: list[float] | np.ndarray, actual_counts: np.ndarray) -> float:
    """PSI of observed counts against the reference shares (same bins)."""
    total = float(np.sum(actual_counts))
    if total == 0:
        return math.nan
    p = np.maximum(np.asarray(actual_counts, dtype=float) / total, FLOOR)
    q = np.maximum(np.asarray(expected, dtype=float), FLOOR)
    return float(np.sum((p - q) * np.log(p / q)))


def column_psi(values: pd.Series, bins: dict[str, Any]) -> float:
    return psi(bins["shares"], counts(values, bins))
