"""Turn ``ml.customer_features`` rows into a model matrix, the same way at train and score time.

Every column other than customer_key and cutoff_date is a feature: numbers and booleans
become floats, text (VARCHAR) becomes a pandas ``category`` with the categories fixed at
training time (unseen values become missing). The :class:`FeatureSpec` is saved with the
model so scoring rebuilds exactly the same matrix.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ml.data import KEY_COLUMNS

log = logging.getLogger(__name__)


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
    missing = [n for n in spec.names if n not in features.columns]
    if missing:
        raise ValueError(
            f"ml.customer_features lacks features the model was trained on: {missing}. "
            "Retrain (python -m ml train) or restore the columns in the dbt model."
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
