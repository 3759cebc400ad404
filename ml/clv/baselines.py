"""The two baselines every CLV model must beat, and the probabilistic pieces LightGBM uses.

- historical average: the customer's spend per day so far × the window, over at least a
  year (``monetary × window / max(age, 365)``): the "yearly net revenue so far" that
  revenue at risk used before a CLV model existed; a customer seen for a week does not
  have one order annualised 52 times;
- BG/NBD + Gamma-Gamma: expected purchase days in the window (:mod:`ml.churn.bgnbd`) ×
  expected value of a purchase day (:mod:`ml.clv.gamma_gamma`), both fitted on the
  purchase history up to the cutoff only (no labels), per cutoff. The horizon is in the
  model: it extrapolates to any window.

Inputs are :func:`ml.clv.labels.eligible_history` rows (order history per customer and cutoff).
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import pandas as pd

from ml.churn import bgnbd
from ml.clv import gamma_gamma

log = logging.getLogger(__name__)

DAYS_PER_WEEK = 7.0
AVERAGE_FLOOR_DAYS = 365
NAMES = {"historical_average": "historical average", "bgnbd_gamma_gamma": "BG/NBD + Gamma-Gamma"}


def historical_average(history: pd.DataFrame, window_days: int) -> np.ndarray:
    """Spend so far per day (over at least a year) × ``window_days``."""
    days = history["age_days"].to_numpy(float).clip(min=AVERAGE_FLOOR_DAYS)
    return history["monetary"].to_numpy(float).clip(min=0) / days * window_days


def _bgnbd_inputs(history: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = history["frequency"].to_numpy(float)  # repeat purchase days
    t_x = history["recency_span_days"].to_numpy(float) / DAYS_PER_WEEK
    T = history["age_days"].to_numpy(float) / DAYS_PER_WEEK
    return x, t_x, T


class Probabilistic:
    """BG/NBD + Gamma-Gamma fitted on one cutoff's histories (one row per customer)."""

    def __init__(self, history: pd.DataFrame) -> None:
        self.x, self.t_x, self.T = _bgnbd_inputs(history)
        self.days = self.x + 1  # purchase days, the unit BG/NBD counts
        self.mean_value = history["monetary"].to_numpy(float) / self.days
        self.bgnbd = bgnbd.fit(self.x, self.t_x, self.T)
        self.gg = gamma_gamma.fit(self.days, self.mean_value)
        self.spend = gamma_gamma.expected_spend(self.gg, self.days, self.mean_value)

    def purchases(self, window_days: float) -> np.ndarray:
        """Expected purchase days in (cutoff, cutoff + window]."""
        return bgnbd.expected_purchases(
            self.bgnbd, window_days / DAYS_PER_WEEK, self.x, self.t_x, self.T
        )

    def revenue(self, window_days: float) -> np.ndarray:
        return self.purchases(window_days) * self.spend

    def p_alive(self) -> np.ndarray:
        return bgnbd.probability_alive(self.bgnbd, self.x, self.t_x, self.T)

    def params(self) -> dict:
        return {"bgnbd_weeks": asdict(self.bgnbd), "gamma_gamma": asdict(self.gg)}


def per_cutoff(history: pd.DataFrame) -> dict[pd.Timestamp, Probabilistic]:
    """One fit per cutoff of ``history`` (its rows in their order)."""
    return {
        cutoff: Probabilistic(rows) for cutoff, rows in history.groupby("cutoff_date", sort=True)
    }


def probabilistic_revenue(history: pd.DataFrame, window_days: int) -> np.ndarray:
    """BG/NBD + Gamma-Gamma expected revenue in the window, fitted per cutoff."""
    out = np.zeros(len(history))
    for cutoff, fitted in per_cutoff(history).items():
        mask = (history["cutoff_date"] == cutoff).to_numpy()
        out[mask] = fitted.revenue(window_days)
    return out
