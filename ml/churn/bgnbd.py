"""BG/NBD ("buy till you die", Fader, Hardie & Lee 2005), fitted by maximum likelihood.

Implemented here with scipy because the ``lifetimes`` package no longer works with current
scipy. Inputs per customer: ``x`` = repeat purchases (purchase days − 1), ``t_x`` = time
of the last purchase since the first, ``T`` = time from the first purchase to the cutoff,
all in the same unit (we use weeks for numerical comfort).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float


def log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood (equation 6 of the paper, in log space)."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a3 = np.where(
            x > 0,
            betaln(a + 1, np.maximum(b + x - 1, 1e-12))
            - betaln(a, b)
            - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + np.logaddexp(a2, a3)


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, penalizer: float = 0.0) -> BGNBDParams:
    """Maximum-likelihood parameters (optimised over log-parameters with L-BFGS-B; Nelder-Mead
    if that does not converge)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if len(x) == 0:
        raise ValueError("BG/NBD fit needs at least one customer")

    def nll(log_params: np.ndarray) -> float:
        p = np.exp(log_params)
        ll = log_likelihood(p, x, t_x, T).mean()
        value = -ll + penalizer * np.sum(p**2)
        return float(value) if np.isfinite(value) else 1e10

    start = np.log([0.5, max(float(np.mean(T)), 1.0), 1.0, 1.0])
    bounds = [(-10, 10)] * 4
    best = minimize(nll, start, method="L-BFGS-B", bounds=bounds)
    if not best.success:
        # Nelder-Mead only as a fallback: after a converged L-BFGS-B it walked the flat
        # ridge where a and b grow together (23k evaluations, 88 s on 50k customers at
        # scale M) for a log-likelihood gain of 1e-4 and a ROC-AUC change of 5e-5.
        polish = minimize(
            nll,
            best.x,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxfev": 2000, "xatol": 1e-7, "fatol": 1e-10},
        )
        best = polish if polish.fun <= best.fun else best
    r, alpha, a, b = np.exp(best.x)
    log.debug("BG/NBD fit r=%.3f alpha=%.3f a=%.3f b=%.3f (nll %.4f)", r, alpha, a, b, best.fun)
    return BGNBDParams(float(r), float(alpha), float(a), float(b))


def expected_purchases(
    params: BGNBDParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (equation 10 of the paper)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    z = t / (alpha + T + t)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
    first = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    with np.errstate(divide="ignore", invalid="ignore"):
        second = np.where(
            x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0
        )
    out = first / (1 + second)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def probability_alive(
    params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    ratio = a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return np.where(x > 0, 1.0 / (1.0 + ratio), 1.0)


def simulate(params: BGNBDParams, T: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) for customers observed for T time units — for tests and sanity checks."""
    rng = np.random.default_rng(seed)
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1.0 / lam[i]) if lam[i] > 0 else np.inf
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, t_x
