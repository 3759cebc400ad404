"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"), fitted by maximum
likelihood with scipy, beside BG/NBD (:mod:`ml.churn.bgnbd`) which counts the purchases.

A customer's order values are Gamma(p, nu) around their own mean, nu ~ Gamma(q, gamma)
across customers. Inputs per customer: ``x`` = purchases observed (>= 1) and ``m`` = their
mean value (> 0). The conditional expectation shrinks a customer's own mean towards the
population mean, the more the fewer orders they have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    v: float  # gamma of the paper (scale of the spread of customers' means)


def log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood of the mean value ``m`` of ``x`` orders."""
    p, q, v = params
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + x * m)
    )


def fit(x: np.ndarray, m: np.ndarray) -> GammaGammaParams:
    """Maximum-likelihood parameters over customers with ``x >= 1`` and ``m > 0``."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    keep = (x >= 1) & (m > 0) & np.isfinite(m)
    x, m = x[keep], m[keep]
    if len(x) < 2:
        raise ValueError("Gamma-Gamma fit needs at least two customers with a positive spend")
    # order values spread over orders of magnitude: fit on the mean's scale, then undo it
    scale = float(np.median(m))
    ms = m / scale

    def nll(log_params: np.ndarray) -> float:
        value = -log_likelihood(np.exp(log_params), x, ms).mean()
        return float(value) if np.isfinite(value) else 1e10

    best = minimize(nll, np.log([2.0, 3.0, 2.0]), method="L-BFGS-B", bounds=[(-8, 8)] * 3)
    p, q, v = np.exp(best.x)
    log.debug("Gamma-Gamma fit p=%.3f q=%.3f v=%.3f (nll %.4f)", p, q, v * scale, best.fun)
    return GammaGammaParams(float(p), float(q), float(v * scale))


def expected_spend(params: GammaGammaParams, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[order value | x orders of mean m]; the population mean for customers with none."""
    p, q, v = params.p, params.q, params.v
    x = np.asarray(x, dtype=float)
    m = np.nan_to_num(np.asarray(m, dtype=float), nan=0.0).clip(min=0.0)
    population = p * v / (q - 1) if q > 1 else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = (p * (v + x * m)) / (p * x + q - 1)
    return np.where(x >= 1, conditional, population)
