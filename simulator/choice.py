"""Vectorised draws from each person's latent tastes (categories, products, search words)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator import vocab

# How strongly each price level prefers cheap products (log-price elasticity).
PRICE_ELASTICITY = np.array([0.0, 0.8, 1.8])


class ProductChooser:
    """Draw products for people: category by affinity, then product by popularity and price.

    ``affinity(person, product) = cat_aff[person, category] * within[price_level, product]``
    is exactly the distribution a product view draws from; truth/item_affinities stores it.
    """

    def __init__(self, catalog: pd.DataFrame) -> None:
        self.cat = catalog["cat_idx"].to_numpy()
        self.n_cats = len(vocab.CATEGORIES)
        self.cat_start = np.searchsorted(self.cat, np.arange(self.n_cats))
        self.cat_count = np.bincount(self.cat, minlength=self.n_cats)
        log_price = np.log(catalog["price"].to_numpy())
        rel_price = (
            log_price
            - np.array([log_price[self.cat == c].mean() for c in range(self.n_cats)])[self.cat]
        )
        pop = catalog["popularity"].to_numpy() * np.where(
            catalog["is_discontinued"].to_numpy(), 0.05, 1.0
        )
        within = pop[None, :] * np.exp(-PRICE_ELASTICITY[:, None] * rel_price[None, :])
        # Normalise inside each category, per price level.
        sums = np.zeros((3, self.n_cats))
        for level in range(3):
            sums[level] = np.bincount(self.cat, weights=within[level], minlength=self.n_cats)
        self.within = within / sums[:, self.cat]
        # A monotone global CDF per price level: category g occupies (g, g+1].
        self.cdf = np.empty_like(self.within)
        for level in range(3):
            cs = np.cumsum(self.within[level])
            before = np.concatenate([[0.0], cs])[self.cat_start]  # mass before each category
            self.cdf[level] = self.cat + np.minimum(cs - before[self.cat], 1.0)

    def categories(self, rng: np.random.Generator, cat_aff: np.ndarray) -> np.ndarray:
        """One category per row of ``cat_aff`` (people's category affinities)."""
        cum = np.cumsum(cat_aff, axis=1)
        u = rng.random(len(cat_aff)) * cum[:, -1]
        return np.minimum((cum < u[:, None]).sum(axis=1), self.n_cats - 1)

    def products(
        self, rng: np.random.Generator, cat_aff: np.ndarray, price_level: np.ndarray
    ) -> np.ndarray:
        """One product index (0-based) per person row."""
        cats = self.categories(rng, cat_aff)
        target = cats + rng.random(len(cats)) * (1 - 1e-9)
        out = np.empty(len(cats), dtype=np.int64)
        for level in range(3):
            sel = price_level == level
            out[sel] = np.searchsorted(self.cdf[level], target[sel], side="left")
        lo = self.cat_start[cats]
        return np.clip(out, lo, lo + self.cat_count[cats] - 1)

    def affinity_top(
        self, cat_aff: np.ndarray, price_level: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k products per person by true affinity, in chunks to bound memory."""
        n = len(cat_aff)
        k = min(k, self.within.shape[1])
        idx = np.empty((n, k), dtype=np.int32)
        val = np.empty((n, k), dtype=np.float32)
        step = max(1, 4_000_000 // self.within.shape[1])
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            aff = cat_aff[lo:hi][:, self.cat] * self.within[price_level[lo:hi]]
            top = np.argpartition(-aff, k - 1, axis=1)[:, :k]
            top_val = np.take_along_axis(aff, top, axis=1)
            order = np.argsort(-top_val, axis=1, kind="stable")
            idx[lo:hi] = np.take_along_axis(top, order, axis=1)
            val[lo:hi] = np.take_along_axis(top_val, order, axis=1)
        return idx, val


def search_words(rng: np.random.Generator, cats: np.ndarray) -> np.ndarray:
    """A search term per row, from the given category's vocabulary."""
    words = np.array([w for c in vocab.CATEGORIES for w in vocab.SEARCH_WORDS[c]], dtype=object)
    return words[cats * 5 + rng.integers(0, 5, len(cats))]
