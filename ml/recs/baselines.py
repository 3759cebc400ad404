"""What the recommender must beat, and the best it could do: baselines and the oracle.

Each function returns {customer code: [product codes, best first]} with at most k allowed
products (the same catalogue rule as ours: nothing discontinued or out of the catalogue):

- ``popularity``               the most bought products of the popularity window;
- ``repurchase_then_popular``  the customer's own past products (decayed count), then popular;
- ``item_item``                bought-together and viewed-together products of the customer's
                               recent products (cosine co-occurrence), then popular;
- ``als``                      implicit-feedback matrix factorisation (the ``implicit``
                               package's ALS) on purchases and web views, then popular for
                               customers with no history; its confidence scale is chosen on
                               the validation week, never on the evaluation week;
- ``oracle``                   simulated companies only: each person's true product affinity
                               (``truth/item_affinities.parquet``, the distribution the
                               simulator draws product choices from), best first.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.recs import rank
from ml.recs.candidates import SOURCES, Snapshot, blend

log = logging.getLogger(__name__)

Lists = dict[int, list[int]]


def ranked_lists(frame: pd.DataFrame) -> Lists:
    """{cust: [item, ...]} from a frame with cust, item, rank."""
    frame = frame.sort_values(["cust", "rank"])
    return {int(c): list(map(int, g)) for c, g in frame.groupby("cust")["item"]}


def _fill(lists: Lists, custs: np.ndarray, fallback: np.ndarray, k: int) -> Lists:
    out = {}
    for c in map(int, custs):
        mine = lists.get(c, [])[:k]
        seen = set(mine)
        mine += [int(i) for i in fallback if int(i) not in seen][: k - len(mine)]
        out[c] = mine
    return out


def popular_items(snap: Snapshot, k: int) -> np.ndarray:
    return snap.rank_allowed(snap.buyers_popular, k)


def popularity(snap: Snapshot, custs: np.ndarray, k: int) -> Lists:
    return _fill({}, custs, popular_items(snap, k), k)


def repurchase_then_popular(snap: Snapshot, long: pd.DataFrame, custs: np.ndarray, k: int) -> Lists:
    own = long[long["source"] == SOURCES.index("repurchase")]
    return _fill(ranked_lists(own), custs, popular_items(snap, k), k)


def item_item(snap: Snapshot, long: pd.DataFrame, custs: np.ndarray, k: int) -> Lists:
    ranked = blend(long, {"co_purchase": 1.0, "co_view": 1.0}, k)
    return _fill(ranked_lists(ranked), custs, popular_items(snap, k), k)


def _interactions(snap: Snapshot) -> sp.csr_matrix:
    """Customers × products: purchases (lines) + 0.25 × recent web views/carts."""
    d = snap.data
    rows = [snap.lines["cust"].to_numpy()]
    cols = [snap.lines["item"].to_numpy()]
    vals = [np.ones(len(snap.lines))]
    if d.has_web:
        w = snap.web[(snap.web["cust"] >= 0) & (snap.web["age"] <= snap.cfg.web_window_days)]
        rows.append(w["cust"].to_numpy())
        cols.append(w["item"].to_numpy())
        vals.append(np.full(len(w), 0.25))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(d.n_customers, d.n_items),
    )


def als(snap: Snapshot, custs: np.ndarray, k: int, alpha: float, seed: int, threads: int) -> Lists:
    """Top k by ALS (64 factors, 15 iterations, confidence = alpha × interactions)."""
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    user_items = _interactions(snap).astype(np.float32)
    # implicit's advice: BLAS threads fight its own (limited here, so its warning is moot)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="OpenBLAS is configured")
        model = AlternatingLeastSquares(
            factors=64,
            regularization=0.05,
            alpha=alpha,
            iterations=15,
            random_state=seed,
            num_threads=rank.threads_for(user_items.nnz, threads),
        )
        model.fit(user_items, show_progress=False)
        known = np.asarray(custs)[np.diff(user_items.indptr)[custs] > 0]
        allowed = np.flatnonzero(snap.data.allowed)
        lists: Lists = {}
        if len(known) and len(allowed):
            ids, _ = model.recommend(
                known,
                user_items[known],
                N=min(k, len(allowed)),
                filter_already_liked_items=False,
                items=allowed,
            )
            lists = {
                int(c): [int(i) for i in row if i >= 0] for c, row in zip(known, ids, strict=True)
            }
    return _fill(lists, custs, popular_items(snap, k), k)


def oracle(snap: Snapshot, custs: np.ndarray, k: int) -> tuple[Lists, dict] | None:
    """The simulator's true affinity ranking for the customers; None without ground truth."""
    from ml.common.oracle import person_of_customer, truth_dir

    truth = truth_dir()
    if truth is None or not (truth / "item_affinities.parquet").exists():
        return None
    d = snap.data
    try:
        persons = person_of_customer(truth)
    except Exception as exc:  # noqa: BLE001 - the oracle is optional; say why and go on
        log.warning("oracle not computed: %s", exc)
        return None
    keys = pd.Series(d.customers[custs], index=custs)
    who = persons.set_index("customer_key")["person_id"].reindex(keys.to_numpy())
    # only the evaluated customers' persons (7M rows for 100k persons; a week's buyers are 5k)
    wanted = [int(p) for p in pd.unique(who.dropna())]
    aff = pd.read_parquet(
        truth / "item_affinities.parquet", filters=[("person_id", "in", wanted)] if wanted else None
    )
    truth_ids = aff["product_id"].astype(str).to_numpy(str)  # the warehouse's ids are text
    pos = np.searchsorted(d.product_ids, truth_ids)
    pos = np.minimum(pos, d.n_items - 1)
    known = d.product_ids[pos] == truth_ids
    aff = aff[known].assign(item=pos[known])
    aff = aff[d.allowed[aff["item"].to_numpy()]]
    aff = aff.sort_values(["person_id", "affinity", "item"], ascending=[True, False, True])
    aff = aff.groupby("person_id").head(k)
    per_person = aff.groupby("person_id")["item"].apply(list)
    lists = {
        int(c): [int(i) for i in per_person.get(p, [])]
        for c, p in zip(custs, who.to_numpy(), strict=True)
        if pd.notna(p)
    }
    info = {"oracle_customers": len(lists), "oracle_unmatched": int(len(custs) - len(lists))}
    return {int(c): lists.get(int(c), []) for c in custs}, info
