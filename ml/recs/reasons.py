"""Why a product is recommended: the most personal source that proposed it, as words
("often bought with …", "you left it in your cart", "popular in kitchen")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.recs.candidates import Generator

# The reason shown is the most personal source that proposed the product.
REASON_ORDER = (
    "recently_carted",
    "repurchase",
    "cart_buy",
    "view_buy",
    "co_purchase",
    "recently_viewed",
    "co_view",
    "category_popular",
    "segment_popular",
    "trending",
    "popular",
)


def reasons(gen: Generator, top: pd.DataFrame, feats: pd.DataFrame) -> tuple[list, list]:
    """(source, text) per recommendation: the most personal source that proposed it."""
    d, snap = gen.snap.data, gen.snap
    f = top[["cust", "item"]].merge(feats, on=["cust", "item"], how="left")
    source = np.full(len(f), "popular", dtype=object)
    for name in reversed(REASON_ORDER):
        source = np.where(f[f"{name}_rank"].notna().to_numpy(), name, source)
    via = np.full(len(f), -1)
    for name in ("co_purchase", "co_view", "view_buy", "cart_buy"):
        m = source == name
        if m.any():
            via[m] = gen.via(name, f["cust"].to_numpy()[m], f["item"].to_numpy()[m])
    item, cust = f["item"].to_numpy(), f["cust"].to_numpy()
    texts = np.full(len(f), "popular right now", dtype=object)
    for name, text in (
        ("repurchase", "you bought it before"),
        ("recently_viewed", "you viewed it recently"),
        ("recently_carted", "you left it in your cart"),
        ("trending", "trending this week"),
    ):
        texts[source == name] = text
    for name, text in (
        ("co_purchase", "often bought with {}"),
        ("co_view", "viewed together with {}"),
        ("view_buy", "bought by people who viewed {}"),
        ("cart_buy", "bought by people who carted {}"),
    ):
        m = source == name
        texts[m] = [text.format(d.names[v] if v >= 0 else "what you looked at") for v in via[m]]
    m = source == "category_popular"
    texts[m] = ["popular in " + c for c in d.categories[d.category[item[m]]]]
    m = source == "segment_popular"
    seg = snap.segment[cust[m]]
    texts[m] = [
        f"popular with {d.channels[g]} customers" if g >= 0 else "popular with customers like you"
        for g in seg
    ]
    return list(source), list(texts)
