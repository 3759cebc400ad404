"""How far is the model from the best possible? The simulator's oracle on our holdout rows.

Only for simulated companies: when the ground truth exists (``C720_TRUTH_DIR``, default
``<sources>/truth``, written by ``python -m simulator``) the true churn probability of each
person at the holdout cutoff (``simulator.oracle.oracle_scores``: 1 if already churned,
otherwise the race between the true hazard and order rate) is scored against **our** label
on **exactly our holdout rows** (same eligible customers, same cutoff, same horizon). Our
customer_key is mapped to the simulator's person through the CRM contacts
(``intermediate.int_identity_nodes_resolved``: contact_id → customer_key;
``truth/contact_persons.parquet``: contact_id → person_id). A key whose contacts belong to
several persons (a wrong merge) takes the person of its lowest contact_id.

The pipeline never needs the truth: without it :func:`oracle_metrics` returns ``None``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from customer720 import warehouse
from customer720.settings import get_settings
from ml.common.evaluate import ranking_metrics

log = logging.getLogger(__name__)


def truth_dir() -> Path | None:
    """The simulator's truth folder when it holds what the oracle needs, else None."""
    path = get_settings().truth_dir
    needed = [path / "contact_persons.parquet", path / "_state" / "meta.json"]
    return path if all(p.exists() for p in needed) else None


def person_of_customer(truth: Path) -> pd.DataFrame:
    """customer_key → person_id (lowest contact_id wins), with the number of persons per key."""
    nodes = warehouse.query_df(
        "select contact_id, customer_key "
        "from intermediate.int_identity_nodes_resolved "
        "where node_type = 'contact' and contact_id is not null"
    )
    persons = pd.read_parquet(
        truth / "contact_persons.parquet", columns=["contact_id", "person_id"]
    )
    nodes["customer_key"] = nodes["customer_key"].astype(str)
    # The warehouse keys contacts by text ids; the simulator's truth by its integers.
    nodes["contact_id"] = nodes["contact_id"].astype(str)
    persons["contact_id"] = persons["contact_id"].astype(str)
    # lowest contact first, integer ids by number (the truth's ids are integers)
    joined = (
        nodes.merge(persons, on="contact_id", how="inner")
        .assign(_digits=lambda f: f["contact_id"].str.len())
        .sort_values(["customer_key", "_digits", "contact_id"], kind="mergesort")
    )
    n_persons = joined.groupby("customer_key")["person_id"].nunique().rename("n_persons")
    first = joined.drop_duplicates("customer_key")[["customer_key", "person_id"]]
    return first.merge(n_persons, on="customer_key")


def oracle_metrics(
    holdout: pd.DataFrame, model_score: np.ndarray, horizon_days: int
) -> dict | None:
    """Oracle ROC-AUC on the holdout rows (customer_key, cutoff_date, churned) and the gap.

    Returns None without ground truth or when the oracle cannot be computed (logged).
    ``gap_to_oracle`` = oracle ROC-AUC − model ROC-AUC on the rows both could score.
    """
    truth = truth_dir()
    if truth is None or holdout.empty:
        return None
    try:
        from simulator.oracle import oracle_scores

        mapping = person_of_customer(truth)
        rows = holdout[["customer_key", "cutoff_date", "churned"]].copy()
        rows["model"] = np.asarray(model_score, float)
        rows = rows.merge(mapping, on="customer_key", how="left")
        parts = []
        for cutoff, group in rows.groupby("cutoff_date"):
            scores = oracle_scores(truth.parent, pd.Timestamp(cutoff).date(), horizon_days)
            parts.append(group.merge(scores[["person_id", "oracle"]], on="person_id", how="left"))
        rows = pd.concat(parts, ignore_index=True)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as exc:
        log.warning("oracle not computed: %s", exc)
        return None
    scored = rows[rows["oracle"].notna()]
    y = scored["churned"].to_numpy(int)
    if len(np.unique(y)) < 2:
        return None
    oracle_auc = ranking_metrics(y, scored["oracle"].to_numpy(float))["roc_auc"]
    model_auc = ranking_metrics(y, scored["model"].to_numpy(float))["roc_auc"]
    out = {
        "oracle_roc_auc": oracle_auc,
        "gap_to_oracle": oracle_auc - model_auc,
        "oracle_rows": int(len(scored)),
        "oracle_unmatched_rows": int(len(rows) - len(scored)),
        "oracle_multi_person_keys": int((rows["n_persons"].fillna(1) > 1).sum()),
        "model_roc_auc_on_oracle_rows": model_auc,
    }
    log.info(
        "oracle ROC-AUC %.4f on %d holdout rows (model %.4f, gap %.4f; %d rows unmatched)",
        oracle_auc,
        out["oracle_rows"],
        model_auc,
        out["gap_to_oracle"],
        out["oracle_unmatched_rows"],
    )
    return out
