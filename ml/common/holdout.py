"""Held-out customers: the one way both models draw the customers a fit never sees."""

from __future__ import annotations

import numpy as np


def sample_customers(keys: np.ndarray, share: float, rng: np.random.Generator) -> set:
    """``share`` of the distinct ``keys`` (at least one), drawn without replacement.

    The keys are sorted first, so the draw depends only on which customers there are and
    on ``rng``, not on the row order of the frame they came from. Pass one generator to
    several calls to draw within strata (churners and the others) reproducibly."""
    distinct = np.unique(keys)
    return draw_customers(distinct, max(1, int(len(distinct) * share)), rng)


def draw_customers(keys: np.ndarray, size: int, rng: np.random.Generator) -> set:
    """``size`` of the distinct ``keys``, drawn without replacement from them sorted (so the
    draw depends only on which customers there are and on ``rng``)."""
    return set(rng.choice(np.sort(np.unique(keys)), size=size, replace=False))
