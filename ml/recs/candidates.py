"""Candidate generators: cheap, tagged sources of products each customer might buy next.

Every source returns (customer, product, score) rows, at most ``RecConfig.source_caps[s]``
per customer, best first, allowed products only (in the catalogue, not discontinued):

============================  ==============================================================
``repurchase``                the customer's own past products (count, decayed by age)
``co_purchase``               bought in the same orders as the customer's recent products
``co_view``                   viewed/carted in the same web sessions as the customer's
                              recent products (web)
``view_buy``                  bought by others within days after viewing what the customer
                              recently viewed (web)
``cart_buy``                  the same after carting (web)
``recently_viewed``           viewed in the last days and not bought since (web)
``recently_carted``           carted in the last days and not bought since (web)
``category_popular``          best sellers in the customer's top categories (purchases, and
                              views when there is web data)
``segment_popular``           best sellers among customers of the same segment: the
                              customer's usual order channel, or the web channel group for a
                              customer with no order yet (cold start)
``trending``                  best sellers of the last week that are growing
``popular``                   best sellers of the recent window (everybody gets them)
============================  ==============================================================

Without web data the web sources are simply absent. All statistics are computed from the
history known at the cutoff (:class:`Snapshot`), over **all** customers, whichever customers
candidates are generated for. Item-item similarities are cosine over baskets (orders,
sessions, or "viewed in the days before an order" → "bought in it") computed with sparse
matrix products, so they stay cheap for large customer bases.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.common.config import RecConfig
from ml.recs.data import CART, VIEW, RecData

log = logging.getLogger(__name__)

SOURCES = (
    "repurchase",
    "co_purchase",
    "co_view",
    "view_buy",
    "cart_buy",
    "recently_viewed",
    "recently_carted",
    "category_popular",
    "segment_popular",
    "trending",
    "popular",
)
WEB_SOURCES = frozenset({"co_view", "view_buy", "cart_buy", "recently_viewed", "recently_carted"})
DAY = np.timedelta64(1, "D")


def days_before(moment: pd.Timestamp, stamps: pd.Series | np.ndarray) -> np.ndarray:
    """Days (float) from each timestamp to ``moment``."""
    return (np.datetime64(moment, "ns") - np.asarray(stamps, "datetime64[ns]")) / DAY


def topk_per_row(mat: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, value) of the k largest stored values of each row, best first (ties: col)."""
    mat = mat.tocsr()
    mat.eliminate_zeros()
    rows = np.repeat(np.arange(mat.shape[0]), np.diff(mat.indptr))
    order = np.lexsort((mat.indices, -mat.data, rows))
    rank = np.arange(len(order)) - mat.indptr[rows[order]]
    keep = order[rank < k]
    return rows[keep], mat.indices[keep], mat.data[keep]


def _pairs_sum(rows: np.ndarray, cols: np.ndarray, w: np.ndarray, shape) -> sp.csr_matrix:
    return sp.csr_matrix((w, (rows, cols)), shape=shape)  # duplicates are summed


def cosine_neighbours(left: sp.csr_matrix, right: sp.csr_matrix, k: int, self_too: bool):
    """Item-item cosine over baskets: left (baskets × items) ᵀ · right, top k per item."""
    left = (left > 0).astype(np.float32)
    right = (right > 0).astype(np.float32)
    co = (left.T @ right).tocsr()
    if not self_too:
        co.setdiag(0)
    nl = np.asarray(left.sum(axis=0)).ravel()
    nr = np.asarray(right.sum(axis=0)).ravel()
    co = co.tocoo()
    with np.errstate(divide="ignore", invalid="ignore"):  # explicit zeros on the diagonal
        sim = np.nan_to_num(co.data / np.sqrt(nl[co.row] * nr[co.col]))
    r, c, v = topk_per_row(sp.csr_matrix((sim, (co.row, co.col)), shape=co.shape), k)
    return sp.csr_matrix((v, (r, c)), shape=co.shape)


@dataclass
class Snapshot:
    """The history known at ``at`` and the statistics every source and feature shares."""

    data: RecData
    at: pd.Timestamp
    cfg: RecConfig

    @cached_property
    def lines(self) -> pd.DataFrame:
        x = self.data.items
        return x.assign(age=days_before(self.at, x["ordered_at"]))

    @cached_property
    def web(self) -> pd.DataFrame:
        x = self.data.web
        return x.assign(age=days_before(self.at, x["occurred_at"]))

    def _buyers(self, days: int) -> np.ndarray:
        x = self.lines[self.lines["age"] <= days]
        pairs = np.unique(x["cust"].to_numpy(np.int64) * self.data.n_items + x["item"].to_numpy())
        return np.bincount(pairs % self.data.n_items, minlength=self.data.n_items).astype(float)

    @cached_property
    def buyers_7d(self) -> np.ndarray:
        return self._buyers(7)

    @cached_property
    def buyers_28d(self) -> np.ndarray:
        return self._buyers(28)

    @cached_property
    def buyers_popular(self) -> np.ndarray:
        """Distinct buyers per product in the popularity window (all history if it is empty)."""
        b = self._buyers(self.cfg.popular_window_days)
        return b if b.sum() else self._buyers(10**6)

    @cached_property
    def trend(self) -> np.ndarray:
        """Last week's buyers against the weekly rate of the three weeks before (smoothed)."""
        prior = (self.buyers_28d - self.buyers_7d) / 3.0
        return (self.buyers_7d + 1.0) / (prior + 1.0)

    @cached_property
    def views_7d(self) -> np.ndarray:
        x = self.web[(self.web["age"] <= 7) & (self.web["kind"] == VIEW)]
        return np.bincount(x["item"], minlength=self.data.n_items).astype(float)

    @cached_property
    def repeat_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per product: share of its buyers who bought it on ≥ 2 days, median repeat gap (days)."""
        x = self.lines[["cust", "item", "age"]].copy()
        x["day"] = np.floor(x["age"])
        x = x.drop_duplicates(["cust", "item", "day"]).sort_values(["cust", "item", "day"])
        n = self.data.n_items
        per = x.groupby(["cust", "item"]).size()
        items = per.index.get_level_values("item").to_numpy()
        buyers = np.bincount(items, minlength=n).astype(float)
        repeaters = np.bincount(items, weights=(per.to_numpy() >= 2), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(buyers > 0, repeaters / buyers, np.nan)
        day, cust, item = x["day"].to_numpy(), x["cust"].to_numpy(), x["item"].to_numpy()
        same = (cust[1:] == cust[:-1]) & (item[1:] == item[:-1])
        gap = pd.Series(np.abs(np.diff(day))[same]).groupby(item[1:][same]).median()
        median_gap = np.full(n, np.nan)
        median_gap[gap.index.to_numpy(int)] = gap.to_numpy()
        return rate, median_gap

    def rank_allowed(self, score: np.ndarray, k: int) -> np.ndarray:
        """Item codes of the k best allowed products by ``score`` (ties: product order)."""
        ok = np.flatnonzero(self.data.allowed & (score > 0))
        return ok[np.lexsort((ok, -score[ok]))][:k]

    def _top_channel(self, frame: pd.DataFrame) -> np.ndarray:
        """Per customer code: the most frequent channel code in ``frame`` (-1 if none; a
        row counts ``n`` times if it has n: folded sessions)."""
        top = np.full(self.data.n_customers, -1, np.int32)
        if len(frame):
            g = frame.groupby(["cust", "channel"])
            counts = (g["n"].sum() if "n" in frame else g.size()).reset_index(name="n")
            counts = counts.sort_values(["cust", "n", "channel"], ascending=[True, False, True])
            best = counts.drop_duplicates("cust")
            top[best["cust"].to_numpy()] = best["channel"].to_numpy()
        return top

    @cached_property
    def order_channel(self) -> np.ndarray:
        return self._top_channel(self.lines)

    @cached_property
    def web_channel(self) -> np.ndarray:
        return self._top_channel(self.data.sessions)

    @cached_property
    def segment(self) -> np.ndarray:
        """Per customer code: the usual order channel, else (cold start) the web channel group."""
        return np.where(self.order_channel >= 0, self.order_channel, self.web_channel)

    @cached_property
    def co_purchase_sim(self) -> sp.csr_matrix:
        x = self.lines[self.lines["age"] <= self.cfg.cooc_days]
        baskets = pd.factorize(x["order_id"])[0]
        b = _pairs_sum(
            baskets,
            x["item"].to_numpy(),
            np.ones(len(x)),
            (baskets.max() + 1 if len(x) else 0, self.data.n_items),
        )
        return cosine_neighbours(b, b, self.cfg.neighbours, self_too=False)

    @cached_property
    def co_view_sim(self) -> sp.csr_matrix:
        x = self.web[self.web["age"] <= self.cfg.web_window_days]
        baskets = pd.factorize(x["session"])[0]
        shape = (baskets.max() + 1 if len(x) else 0, self.data.n_items)
        b = _pairs_sum(baskets, x["item"].to_numpy(), np.ones(len(x)), shape)
        return cosine_neighbours(b, b, self.cfg.neighbours, self_too=False)

    def _then_bought_sim(self, kind: int) -> sp.csr_matrix:
        """Viewed (or carted) a in the days before an order → bought b in it (a = b kept)."""
        w = self.web[
            (self.web["age"] <= self.cfg.web_window_days)
            & (self.web["kind"] == kind)
            & (self.web["cust"] >= 0)
        ][["cust", "item", "occurred_at"]]
        o = self.lines[self.lines["age"] <= self.cfg.web_window_days][
            ["cust", "item", "order_id", "ordered_at"]
        ]
        j = w.merge(o, on="cust", suffixes=("_seen", "_bought"))
        lag = (j["ordered_at"] - j["occurred_at"]) / pd.Timedelta(days=1)
        j = j[(lag >= 0) & (lag <= self.cfg.view_to_buy_days)]
        baskets = pd.factorize(j["order_id"])[0]
        shape = (baskets.max() + 1 if len(j) else 0, self.data.n_items)
        seen = _pairs_sum(baskets, j["item_seen"].to_numpy(), np.ones(len(j)), shape)
        bought = _pairs_sum(baskets, j["item_bought"].to_numpy(), np.ones(len(j)), shape)
        return cosine_neighbours(seen, bought, self.cfg.neighbours, self_too=True)

    @cached_property
    def view_buy_sim(self) -> sp.csr_matrix:
        return self._then_bought_sim(VIEW)

    @cached_property
    def cart_buy_sim(self) -> sp.csr_matrix:
        return self._then_bought_sim(CART)


def active_customers(snap: Snapshot) -> np.ndarray:
    """Customer codes to recommend for: a purchase within the inactivity window, or a web
    product view/cart (stitched to a customer) within the recent-view window."""
    cfg = snap.cfg
    buyers = snap.lines.loc[snap.lines["age"] <= cfg.inactivity_days, "cust"].to_numpy()
    web = snap.web
    visitors = web.loc[(web["age"] <= cfg.recent_view_days) & (web["cust"] >= 0), "cust"]
    return np.unique(np.concatenate([buyers, visitors.to_numpy()])).astype(np.int32)


class Generator:
    """Candidates for the customers ``custs`` (codes) at ``snap.at``."""

    def __init__(self, snap: Snapshot, custs: np.ndarray) -> None:
        self.snap = snap
        self.cfg = snap.cfg
        self.custs = np.asarray(custs, np.int32)
        self.row = pd.Series(np.arange(len(self.custs)), index=self.custs)  # cust code → row
        mine = snap.lines["cust"].isin(self.row.index)
        self.lines = snap.lines[mine.to_numpy()]
        web = snap.web
        self.web = web[web["cust"].isin(self.row.index).to_numpy()] if len(web) else web
        self.seeds: dict[str, sp.csr_matrix] = {}  # per item-item source, for reasons (via)

    # -- helpers ------------------------------------------------------------------------------
    def _matrix(self, cust: np.ndarray, item: np.ndarray, w: np.ndarray) -> sp.csr_matrix:
        rows = self.row.reindex(cust).to_numpy()
        return _pairs_sum(rows, item, w, (len(self.custs), self.snap.data.n_items))

    def _top(self, mat: sp.csr_matrix, source: str) -> pd.DataFrame:
        allowed = sp.diags(self.snap.data.allowed.astype(np.float32))
        r, c, v = topk_per_row((mat @ allowed).tocsr(), self.cfg.source_caps[source])
        return pd.DataFrame(
            {"cust": self.custs[r], "item": c.astype(np.int32), "score": v.astype(float)}
        )

    def _same_list(self, items: np.ndarray, scores: np.ndarray, who: np.ndarray) -> pd.DataFrame:
        """The same ranked products for every customer code in ``who``."""
        n = len(items)
        return pd.DataFrame(
            {
                "cust": np.repeat(who, n).astype(np.int32),
                "item": np.tile(items, len(who)).astype(np.int32),
                "score": np.tile(scores, len(who)).astype(float),
            }
        )

    def _seeds(self, frame: pd.DataFrame, half_life: float, n: int) -> sp.csr_matrix:
        """The n most recent distinct products per customer, weighted by recency."""
        last = frame.groupby(["cust", "item"], sort=False)["age"].min().reset_index()
        last = last.sort_values(["cust", "age", "item"]).groupby("cust").head(n)
        w = np.exp(-last["age"].to_numpy() / half_life)
        return self._matrix(last["cust"].to_numpy(), last["item"].to_numpy(), w)

    def _recent(self, kind: int) -> pd.DataFrame:
        w = self.web[(self.web["kind"] == kind) & (self.web["age"] <= self.cfg.recent_view_days)]
        last_buy = self.lines.groupby(["cust", "item"])["age"].min().rename("bought_age")
        w = w.join(last_buy, on=["cust", "item"])
        return w[~(w["bought_age"] <= w["age"])]  # not bought since

    # -- sources ------------------------------------------------------------------------------
    def repurchase(self) -> pd.DataFrame:
        x = self.lines
        w = np.exp(-x["age"].to_numpy() / self.cfg.repurchase_half_life_days)
        return self._top(self._matrix(x["cust"].to_numpy(), x["item"].to_numpy(), w), "repurchase")

    def co_purchase(self) -> pd.DataFrame:
        seeds = self.seeds["co_purchase"] = self._seeds(self.lines, 90.0, self.cfg.seed_items)
        return self._top(seeds @ self.snap.co_purchase_sim, "co_purchase")

    def co_view(self) -> pd.DataFrame:
        recent = self.web[self.web["age"] <= self.cfg.recent_view_days]
        both = pd.concat([self.lines[["cust", "item", "age"]], recent[["cust", "item", "age"]]])
        seeds = self.seeds["co_view"] = self._seeds(both, 30.0, self.cfg.seed_items)
        return self._top(seeds @ self.snap.co_view_sim, "co_view")

    def view_buy(self) -> pd.DataFrame:
        seeds = self.seeds["view_buy"] = self._seeds(self._recent(VIEW), 14.0, self.cfg.seed_items)
        return self._top(seeds @ self.snap.view_buy_sim, "view_buy")

    def cart_buy(self) -> pd.DataFrame:
        seeds = self.seeds["cart_buy"] = self._seeds(self._recent(CART), 14.0, self.cfg.seed_items)
        return self._top(seeds @ self.snap.cart_buy_sim, "cart_buy")

    def _recently(self, kind: int, source: str) -> pd.DataFrame:
        x = self._recent(kind)
        w = np.exp(-x["age"].to_numpy() / 7.0)
        return self._top(self._matrix(x["cust"].to_numpy(), x["item"].to_numpy(), w), source)

    def recently_viewed(self) -> pd.DataFrame:
        return self._recently(VIEW, "recently_viewed")

    def recently_carted(self) -> pd.DataFrame:
        return self._recently(CART, "recently_carted")

    def category_popular(self) -> pd.DataFrame:
        d = self.snap.data
        cats = [pd.DataFrame({"cust": self.lines["cust"], "item": self.lines["item"], "w": 1.0})]
        if len(self.web):
            recent = self.web[self.web["age"] <= self.cfg.web_window_days]
            cats.append(pd.DataFrame({"cust": recent["cust"], "item": recent["item"], "w": 0.25}))
        x = pd.concat(cats)
        x["cat"] = d.category[x["item"].to_numpy()]
        share = x.groupby(["cust", "cat"])["w"].sum().reset_index()
        share["w"] /= share.groupby("cust")["w"].transform("sum")
        share = share.sort_values(["cust", "w", "cat"], ascending=[True, False, True])
        share = share.groupby("cust").head(self.cfg.top_categories)
        pop = self.snap.buyers_popular
        per_cat = []
        for cat in np.unique(share["cat"]):
            best = self.snap.rank_allowed(
                np.where(d.category == cat, pop, 0.0), self.cfg.per_category
            )
            if len(best):
                per_cat.append(
                    pd.DataFrame({"cat": cat, "item": best, "pop": pop[best] / pop[best].max()})
                )
        if not per_cat:
            return self._empty()
        cp = share.merge(pd.concat(per_cat), on="cat")
        mat = self._matrix(
            cp["cust"].to_numpy(), cp["item"].to_numpy(), (cp["w"] * cp["pop"]).to_numpy()
        )
        return self._top(mat, "category_popular")

    def segment_popular(self) -> pd.DataFrame:
        """Best sellers among buyers with the same usual order channel; a customer with no
        order yet gets those of buyers who come through the same web channel group."""
        snap = self.snap
        x = snap.lines[snap.lines["age"] <= self.cfg.popular_window_days]
        x = x.drop_duplicates(["cust", "item"])
        k = self.cfg.source_caps["segment_popular"]
        has_orders = snap.order_channel[self.custs] >= 0
        frames = []
        for seg_of, who in ((snap.order_channel, has_orders), (snap.web_channel, ~has_orders)):
            buyer_seg = seg_of[x["cust"].to_numpy()]
            mine = seg_of[self.custs]
            for seg in np.unique(mine[who & (mine >= 0)]):
                counts = np.bincount(x["item"][buyer_seg == seg], minlength=snap.data.n_items)
                best = snap.rank_allowed(counts.astype(float), k)
                if len(best):
                    frames.append(
                        self._same_list(best, counts[best], self.custs[who & (mine == seg)])
                    )
        return pd.concat(frames, ignore_index=True) if frames else self._empty()

    def trending(self) -> pd.DataFrame:
        s = self.snap
        score = np.where(s.buyers_7d >= 2, s.trend * np.log1p(s.buyers_7d), 0.0)
        best = s.rank_allowed(score, self.cfg.source_caps["trending"])
        return self._same_list(best, score[best], self.custs)

    def popular(self) -> pd.DataFrame:
        pop = self.snap.buyers_popular
        best = self.snap.rank_allowed(pop, self.cfg.source_caps["popular"])
        return self._same_list(best, pop[best], self.custs)

    def via(self, source: str, cust: np.ndarray, item: np.ndarray) -> np.ndarray:
        """For item-item candidates: the customer's seed product that contributed most to
        each (cust, item) (-1 if none), for the reason text."""
        seeds, sim = self.seeds.get(source), getattr(self.snap, f"{source}_sim")
        out = np.full(len(cust), -1)
        if seeds is None or not len(cust):
            return out
        contrib = seeds[self.row.reindex(cust).to_numpy()].multiply(sim.T.tocsr()[item])
        r, c, _ = topk_per_row(sp.csr_matrix(contrib), 1)
        out[r] = c
        return out

    @staticmethod
    def _empty() -> pd.DataFrame:
        return pd.DataFrame(
            {
                "cust": np.array([], np.int32),
                "item": np.array([], np.int32),
                "score": np.array([], float),
            }
        )

    def generate(self, sources: tuple[str, ...] = SOURCES) -> pd.DataFrame:
        """Long frame cust, item, source (code into SOURCES), score, rank (1 = best in source)."""
        frames = []
        for name in sources:
            if name in WEB_SOURCES and not self.snap.data.has_web:
                continue  # no web data: the web generators are simply absent
            part = getattr(self, name)()
            if len(part):
                part["source"] = np.int8(SOURCES.index(name))
                frames.append(part)
        if not frames:
            out = self._empty().assign(source=np.array([], np.int8))
        else:
            out = pd.concat(frames, ignore_index=True)
        out = out.sort_values(
            ["cust", "source", "score", "item"], ascending=[True, True, False, True]
        )
        out["rank"] = out.groupby(["cust", "source"]).cumcount().astype(np.int16) + 1
        return out.reset_index(drop=True)


def cap_candidates(long: pd.DataFrame, max_candidates: int) -> pd.DataFrame:
    """Keep each customer's ``max_candidates`` products with the best rank in any source."""
    best = long.groupby(["cust", "item"], sort=False).agg(
        best=("rank", "min"), n=("source", "size")
    )
    best = best.reset_index().sort_values(
        ["cust", "best", "n", "item"], ascending=[True, True, False, True]
    )
    keep = best.groupby("cust").head(max_candidates)[["cust", "item"]]
    return long.merge(keep, on=["cust", "item"])


def blend(long: pd.DataFrame, weights: dict[str, float], k: int) -> pd.DataFrame:
    """Top-k per customer by Σ weight × score normalised per (customer, source).

    The transparent fallback when no ranker can be trained (too little data), and the
    ordering of the item-item baseline. Returns cust, item, score, rank.
    """
    w = np.array([weights.get(s, 0.0) for s in SOURCES])
    x = long[w[long["source"].to_numpy()] > 0].copy()
    x["part"] = (x["score"] / x.groupby(["cust", "source"])["score"].transform("max")).fillna(
        0.0
    ) * w[x["source"].to_numpy()]
    out = (
        x.groupby(["cust", "item"], as_index=False)["part"].sum().rename(columns={"part": "score"})
    )
    out = out.sort_values(["cust", "score", "item"], ascending=[True, False, True])
    out = out.groupby("cust").head(k).copy()
    out["rank"] = out.groupby("cust").cumcount() + 1
    return out.reset_index(drop=True)
