"""The churn model itself: LightGBM fit, probability calibration, explanations."""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from ml.config import ChurnConfig

log = logging.getLogger(__name__)


def lgb_params(cfg: ChurnConfig, scale_pos_weight: float) -> dict:
    return {
        "objective": "binary",
        "metric": ["auc", "binary_logloss"],
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.feature_fraction,
        "lambda_l2": cfg.lambda_l2,
        "scale_pos_weight": scale_pos_weight,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": cfg.num_threads,
        "verbosity": -1,
    }


def fit_booster(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    cfg: ChurnConfig,
) -> lgb.Booster:
    """LightGBM binary classifier; imbalance via scale_pos_weight, early stopping on valid AUC."""
    pos = float(np.sum(y_train))
    neg = float(len(y_train) - pos)
    if pos == 0 or neg == 0:
        raise ValueError("training rows contain only one class; cannot train a churn model")
    spw = neg / pos
    params = lgb_params(cfg, spw)
    cats = [c for c in X_train.columns if isinstance(X_train[c].dtype, pd.CategoricalDtype)]
    train_set = lgb.Dataset(
        X_train, label=y_train, categorical_feature=cats or "auto", free_raw_data=False
    )
    valid_set = lgb.Dataset(X_valid, label=y_valid, reference=train_set, free_raw_data=False)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=cfg.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(cfg.early_stopping_rounds, first_metric_only=True, verbose=False),
            lgb.log_evaluation(0),
        ],
    )
    log.info(
        "LightGBM: %d trees (best iteration), scale_pos_weight %.2f", booster.best_iteration, spw
    )
    return booster


def raw_scores(booster: lgb.Booster, X: pd.DataFrame) -> np.ndarray:
    """Uncalibrated probabilities (the booster's output at its best iteration)."""
    return booster.predict(X, num_iteration=booster.best_iteration or None)


class Calibrator:
    """Maps the booster's (re-weighted, so biased) probabilities to calibrated ones."""

    def __init__(self, method: str = "isotonic", seed: int = 42) -> None:
        if method not in ("isotonic", "sigmoid"):
            raise ValueError(f"calibration must be 'isotonic' or 'sigmoid', not {method!r}")
        self.method = method
        self.seed = seed
        self._model = None

    @staticmethod
    def _logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p)).reshape(-1, 1)

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        if self.method == "isotonic":
            self._model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        else:
            self._model = LogisticRegression(random_state=self.seed).fit(self._logit(raw), y)
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("calibrator is not fitted")
        if self.method == "isotonic":
            out = self._model.predict(raw)
        else:
            out = self._model.predict_proba(self._logit(raw))[:, 1]
        return np.clip(np.asarray(out, dtype=float), 0.0, 1.0)


def predict_proba(booster: lgb.Booster, calibrator: Calibrator, X: pd.DataFrame) -> np.ndarray:
    return calibrator.predict(raw_scores(booster, X))


def contributions(booster: lgb.Booster, X: pd.DataFrame, exact: bool = False) -> pd.DataFrame:
    """Per-row contributions (log-odds) per feature, for the reasons; no bias column.

    Default: path contributions (Saabas, as in ``treeinterpreter``): along each tree's path
    from the root to the row's leaf, every change of the node value is credited to the
    feature split on. They sum to the raw score minus the bias, like SHAP values, and take
    one ``pred_leaf`` call plus a sparse product: 100k rows in about a second, where
    LightGBM's exact TreeSHAP (``exact=True``, ``pred_contrib``) took 70 s on 2 cores for
    a 144-tree model. The two agree on the strongest drivers, which is all the reasons use.
    """
    num_iteration = booster.best_iteration or None
    if exact:
        contrib = booster.predict(X, num_iteration=num_iteration, pred_contrib=True)
        return pd.DataFrame(np.asarray(contrib)[:, :-1], columns=list(X.columns), index=X.index)
    table, offsets = _path_contribution_table(booster, num_iteration)
    leaves = np.asarray(booster.predict(X, num_iteration=num_iteration, pred_leaf=True))
    leaves = leaves.reshape(len(X), -1).astype(np.int64)
    n_rows, n_trees = leaves.shape
    cols = (leaves + offsets[None, :n_trees]).ravel()  # one leaf per (row, tree), row-major
    indptr = np.arange(0, n_rows * n_trees + 1, n_trees, dtype=np.int64)
    onehot = sparse.csr_matrix((np.ones(len(cols)), cols, indptr), shape=(n_rows, table.shape[0]))
    return pd.DataFrame(onehot @ table, columns=list(X.columns), index=X.index)


def _path_contribution_table(
    booster: lgb.Booster, num_iteration: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(all leaves × features) contribution of reaching each leaf, and each tree's offset."""
    n_features = booster.num_feature()
    tables, offsets, start = [], [], 0
    for info in booster.dump_model(num_iteration=num_iteration)["tree_info"]:
        root = info["tree_structure"]
        if "leaf_index" in root:  # a single-leaf tree moves nothing
            tables.append(np.zeros((1, n_features)))
        else:
            n_leaves = int(info["num_leaves"])
            table = np.zeros((n_leaves, n_features))
            stack = [(root, np.zeros(n_features))]
            while stack:
                node, path = stack.pop()
                for side in ("left_child", "right_child"):
                    child = node[side]
                    value = child.get("internal_value", child.get("leaf_value"))
                    step = path.copy()
                    step[node["split_feature"]] += value - node["internal_value"]
                    if "leaf_index" in child:
                        table[child["leaf_index"]] = step
                    else:
                        stack.append((child, step))
            tables.append(table)
        offsets.append(start)
        start += len(tables[-1])
    return np.vstack(tables), np.asarray(offsets, dtype=np.int64)


def feature_importance(booster: lgb.Booster) -> dict[str, float]:
    gain = booster.feature_importance(
        importance_type="gain", iteration=booster.best_iteration or None
    )
    total = float(np.sum(gain)) or 1.0
    pairs = sorted(zip(booster.feature_name(), gain, strict=True), key=lambda p: -p[1])
    return {name: float(g / total) for name, g in pairs}
