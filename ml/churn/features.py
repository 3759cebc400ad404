"""Turn ``ml.customer_features`` rows into a model matrix, the same way at train and score time.

Every column other than customer_key and cutoff_date is a feature: numbers and booleans
become floats, text (VARCHAR) becomes a pandas ``category`` with the categories fixed at
training time (unseen values become missing). The :class:`FeatureSpec` is saved with the
model so scoring rebuilds exactly the same matrix.

A few **derived features** (:data:`DERIVED`) are added here from columns of the dbt model
when those columns exist: rates and ratios that mean the same thing at every customer age
(e.g. recency as a share of the customer's lifetime, recency over the customer's own mean
gap between orders). Raw counts and day numbers do not: a model trained on young customers
cannot read "no order for 200 days" when its training rows never went beyond 90 days.
They depend only on the row itself (point in time like the row), are computed the same way
at train and score time, and are listed in the spec like any other feature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ml.common.data import KEY_COLUMNS

log = logging.getLogger(__name__)


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(df[name], errors="coerce").astype(float)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).astype(float)


def _recency_share(df: pd.DataFrame) -> pd.Series:
    return _ratio(_col(df, "recency_days"), _col(df, "days_since_first_order").clip(lower=1))


def _orders_per_30d(df: pd.DataFrame) -> pd.Series:
    return _ratio(30.0 * _col(df, "frequency"), _col(df, "days_since_first_order").clip(lower=30))


def _recency_over_gap(df: pd.DataFrame) -> pd.Series:
    freq = _col(df, "frequency")
    span = _col(df, "days_since_first_order") - _col(df, "recency_days")
    gap = _ratio(span, (freq - 1).where(freq >= 2)).clip(lower=1)
    return _ratio(_col(df, "recency_days"), gap)


def _email_open_rate(df: pd.DataFrame) -> pd.Series:
    return _ratio(_col(df, "emails_opened_90d"), _col(df, "emails_sent_90d"))


def _session_trend(df: pd.DataFrame) -> pd.Series:
    last, prior = _col(df, "sessions_last_30d"), _col(df, "sessions_prior_30d")
    return _ratio(last + 1.0, prior + 1.0)


# name -> (columns it needs, function of the frame); rounded like the dbt features
DERIVED: dict[str, tuple[tuple[str, ...], Callable[[pd.DataFrame], pd.Series]]] = {
    "recency_share_of_life": (("recency_days", "days_since_first_order"), _recency_share),
    "orders_per_30d": (("frequency", "days_since_first_order"), _orders_per_30d),
    "recency_over_mean_gap": (
        ("recency_days", "days_since_first_order", "frequency"),
        _recency_over_gap,
    ),
    "email_open_rate_90d": (("emails_opened_90d", "emails_sent_90d"), _email_open_rate),
    "session_trend_30d": (("sessions_last_30d", "sessions_prior_30d"), _session_trend),
}


def add_derived(features: pd.DataFrame, names: list[str] | None = None) -> pd.DataFrame:
    """``features`` plus the derived columns (all whose inputs exist, or only ``names``)."""
    out = features.copy()
    for name, (needs, fn) in DERIVED.items():
        wanted = names is None or name in names
        if wanted and name not in out.columns and all(c in out.columns for c in needs):
            out[name] = fn(out).round(6)
    return out


@dataclass
class FeatureSpec:
    names: list[str]
    kinds: dict[str, str]  # "numeric" | "boolean" (as 0/1) | "categorical"
    categories: dict[str, list[str]] = field(default_factory=dict)
    medians: dict[str, float] = field(default_factory=dict)  # for "high"/"low" reason words

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        return cls(**d)

    @property
    def categorical(self) -> list[str]:
        return [n for n in self.names if self.kinds[n] == "categorical"]


def _is_text(s: pd.Series) -> bool:
    return (
        pd.api.types.is_string_dtype(s)
        or s.dtype == object
        or isinstance(s.dtype, pd.CategoricalDtype)
    )


def _to_float(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        s = s.astype(object).map(lambda v: np.nan if v is None or v is pd.NA else float(v))
    return pd.to_numeric(s, errors="coerce").astype(float)


def infer_spec(features: pd.DataFrame, max_categories: int = 200) -> FeatureSpec:
    """Learn feature names, kinds, categories and medians from training rows."""
    features = add_derived(features)
    names = [c for c in features.columns if c not in KEY_COLUMNS]
    dates = [c for c in names if pd.api.types.is_datetime64_any_dtype(features[c])]
    if dates:  # raw dates are not features (turn them into *_days columns in dbt)
        log.warning("ignoring date/timestamp columns in ml.customer_features: %s", dates)
        names = [c for c in names if c not in dates]
    if not names:
        raise ValueError("ml.customer_features has no feature columns besides the keys")
    kinds: dict[str, str] = {}
    cats: dict[str, list[str]] = {}
    medians: dict[str, float] = {}
    for name in names:
        s = features[name]
        if _is_text(s) and not pd.api.types.is_bool_dtype(s):
            kinds[name] = "categorical"
            counts = s.dropna().astype(str).value_counts()
            if len(counts) > max_categories:
                log.warning(
                    "feature %s has %d categories; keeping the %d most frequent",
                    name,
                    len(counts),
                    max_categories,
                )
            cats[name] = sorted(counts.index[:max_categories].tolist())
        else:
            kinds[name] = "boolean" if pd.api.types.is_bool_dtype(s) else "numeric"
            v = _to_float(s)
            medians[name] = float(v.median()) if v.notna().any() else 0.0
    return FeatureSpec(names=names, kinds=kinds, categories=cats, medians=medians)


def build_matrix(features: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The model matrix for ``features`` (columns in ``spec.names`` order)."""
    features = add_derived(features, [n for n in spec.names if n in DERIVED])
    missing = [n for n in spec.names if n not in features.columns]
    if missing:
        raise ValueError(
            f"ml.customer_features lacks features the model was trained on: {missing}. "
            "Retrain (python -m ml churn train) or restore the columns in the dbt model."
        )
    X = pd.DataFrame(index=features.index)
    for name in spec.names:
        s = features[name]
        if spec.kinds[name] == "categorical":
            known = set(spec.categories.get(name, []))
            values = [str(v) if pd.notna(v) and str(v) in known else None for v in s.astype(object)]
            X[name] = pd.Categorical(values, categories=spec.categories.get(name, []))
        else:
            X[name] = _to_float(s)
    return X


def numeric_matrix(X: pd.DataFrame) -> np.ndarray:
    """Numbers only (categories as codes) — for sklearn baselines and quick checks."""
    cols = [
        X[c].cat.codes.astype(float) if isinstance(X[c].dtype, pd.CategoricalDtype) else X[c]
        for c in X.columns
    ]
    return np.column_stack(cols) if cols else np.empty((len(X), 0))
