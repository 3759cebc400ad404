"""The day-by-day engine: latent state moves, people churn, browse, buy, complain, get email.

One ``Company.step(day)`` simulates one calendar day for everybody at once with NumPy
arrays (no loop over people or events). Each day draws from its own random stream,
``default_rng([seed, day])``, so appended days are reproducible. The parts of a day live
in mixins: ``commerce`` (orders), ``service`` (tickets, surveys), ``marketing`` (email)
and ``web`` (sessions and events).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from simulator import population as pop
from simulator import vocab
from simulator.choice import ProductChooser
from simulator.commerce import CommerceMixin
from simulator.marketing import MarketingMixin
from simulator.service import ServiceMixin
from simulator.web import WebMixin

log = logging.getLogger(__name__)

DAY = pop.SECONDS_PER_DAY
DECAY = 0.99  # daily decay of experience counts (half-life ~70 days)
N_PRODUCTS_PER_CUSTOMER = 0.05
SNAPSHOT_EVERY = 7  # days between truth snapshots of each person's hazard

# Hazard coefficients: log-hazard contributions of the latent state.
HAZARD_COEF = {
    "late": 0.9,
    "return": 0.7,
    "negative": 1.1,
    "positive": -0.4,
    "email": 0.05,
    "engagement": -0.9,
}
# What the latent state adds on average to a persona's trait hazard (persona rate x
# hazard_mult x the engagement term at engagement_mean): late deliveries, returns and
# complaints come with orders, email fatigue with promos. Measured on a default company
# (10,000 customers x 730 days, seed 1): realised churns / trait hazard summed over the
# alive person-days of days 200-730, once the state has settled; a stationary company of
# 10,000 x 365 (seed 5) gives the same within 0.1. A stationary company
# (population.steady_timing) sizes its population with it.
STATE_HAZARD_FACTOR = {
    "loyal": 3.3,
    "bargain_hunter": 2.7,
    "casual": 1.7,
    "browser": 1.7,
    "offline": 1.7,
    "lead": 1.3,
    "visitor": 1.0,
}


def epoch_seconds(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def season_factor(d: date) -> float:
    """Demand through the year: a summer dip, a November/December peak."""
    doy = d.timetuple().tm_yday
    peak = 1.0 + 0.25 * np.cos(2 * np.pi * (doy - 350) / 365)
    if (d.month == 11 and d.day >= 20) or (d.month == 12 and d.day <= 20):
        peak *= 1.35
    return float(peak)


# A stationary company has no season: every day has the year's mean demand.
MEAN_SEASON = float(np.mean([season_factor(date(2023, 1, 1) + timedelta(i)) for i in range(365)]))


def expected_lifetime(people: dict[str, np.ndarray]) -> np.ndarray:
    """Each person's expected days from first visit to churn: 1 / their average hazard."""
    persona = people["persona"]
    trait = (
        pop.persona_param("hazard_per_day")[persona]
        * people["hazard_mult"]
        * np.exp(HAZARD_COEF["engagement"] * people["engagement_mean"])
    )
    state = np.array([STATE_HAZARD_FACTOR[p.name] for p in pop.PERSONAS])[persona]
    return 1.0 / (trait * state)


WEEKDAY_FACTOR = np.array([0.95, 0.92, 0.95, 1.0, 1.05, 1.15, 1.12])


def _chunks() -> dict[str, list[dict[str, np.ndarray]]]:
    return {
        k: []
        for k in (
            "orders",
            "order_items",
            "tickets",
            "email_events",
            "survey_responses",
            "snapshots",
            "scheduled",
        )
    }


@dataclass
class Company(CommerceMixin, ServiceMixin, MarketingMixin, WebMixin):
    """All state of the simulated company; ``state.py`` saves and loads it for appends."""

    seed: int
    start: date
    next_day: int
    people: dict[str, np.ndarray]
    contacts: pd.DataFrame
    catalog: pd.DataFrame
    devices: dict[str, np.ndarray]
    cookies: dict[str, np.ndarray]
    counters: dict[str, int]
    tables: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=_chunks)
    # Part files already holding the first rows of a table (state.spill, state.load).
    parts: dict[str, list[Path]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start_sec = epoch_seconds(self.start)
        self.price_factor = 1.0  # the injected price shift of the day (api._price_factor)
        self.stationary = False  # no season either (api._run sets it from the company's meta)
        self.chooser = ProductChooser(self.catalog)
        self._index_contacts()

    # ----------------------------------------------------------------- setup
    @classmethod
    def create(
        cls,
        seed: int,
        start: date,
        customers: int,
        visitor_share: float,
        days: int,
        warmup_days: int = 0,
    ) -> Company:
        """A new company whose ``days`` days begin at ``start``. ``warmup_days`` > 0: a
        stationary company, its people timed as in steady state (population.steady_timing)
        and its first simulated day that many days before ``start``, so those days are its
        history. The people themselves (traits, contacts, devices) are those of the same
        seed without it: the timing has its own random stream."""
        rng = np.random.default_rng([seed, 0xC0DE])
        first = start - timedelta(days=warmup_days)
        start_sec = epoch_seconds(first)
        n_products = int(np.clip(customers * N_PRODUCTS_PER_CUSTOMER, 120, 3000))
        catalog = pop.make_catalog(rng, n_products, start_sec)
        people = pop.make_people(
            rng, customers, int(customers * visitor_share), days, len(vocab.CATEGORIES)
        )
        if warmup_days:
            pop.steady_timing(
                np.random.default_rng([seed, 0x57EAD]),
                people,
                expected_lifetime(people),
                warmup_days + days,
            )
        contacts = pop.make_contacts(rng, people, start_sec)
        devices = pop.make_devices(rng, people)
        cookies = pop.new_cookies(rng, devices["person"], 0)
        cookies["used"] = np.zeros(len(devices["person"]), bool)
        counters = {
            "order_id": 1,
            "order_item_id": 1,
            "ticket_id": 1,
            "email_event_id": 1,
            "survey_response_id": 1,
        }
        return cls(seed, first, 0, people, contacts, catalog, devices, cookies, counters)

    def _index_contacts(self) -> None:
        n = len(self.people["persona"])
        c = self.contacts
        primary = c[~c["is_duplicate"]]
        dup = c[c["is_duplicate"]]
        self.person_contact = np.full(n, -1, np.int64)
        self.person_contact[primary["person_id"].to_numpy()] = primary["contact_id"].to_numpy()
        self.person_contact2 = np.full(n, -1, np.int64)
        self.person_contact2[dup["person_id"].to_numpy()] = dup["contact_id"].to_numpy()
        self.contact2_sec = np.full(n, np.iinfo(np.int64).max, np.int64)
        self.contact2_sec[dup["person_id"].to_numpy()] = dup["created_sec"].to_numpy()
        self.contact_row = pd.Series(np.arange(len(c)), index=c["contact_id"].to_numpy())

    def _next_ids(self, name: str, n: int) -> np.ndarray:
        first = self.counters[name]
        self.counters[name] = first + n
        return np.arange(first, first + n, dtype=np.int64)

    def _add(self, table: str, **cols: np.ndarray) -> None:
        self.tables[table].append(cols)

    # ----------------------------------------------------------------- state
    def hazard(self) -> np.ndarray:
        """Today's daily churn hazard for every person (the oracle's ground truth)."""
        p = self.people
        log_h = (
            HAZARD_COEF["late"] * p["late_recent"]
            + HAZARD_COEF["return"] * p["return_recent"]
            + HAZARD_COEF["negative"] * p["negative_recent"]
            + HAZARD_COEF["positive"] * np.minimum(p["positive_recent"], 2.0)
            + HAZARD_COEF["email"] * p["email_recent"]
            + HAZARD_COEF["engagement"] * p["engagement"]
        )
        h0 = pop.persona_param("hazard_per_day")[p["persona"]] * p["hazard_mult"]
        return np.minimum(h0 * np.exp(log_h), 0.5).astype(np.float32)

    def order_rate(self) -> np.ndarray:
        """Expected orders per day (before weekday and season factors)."""
        p = self.people
        base = pop.persona_param("orders_per_day")[p["persona"]] * p["order_mult"]
        return (base * np.exp(0.6 * p["engagement"])).astype(np.float32)

    # ----------------------------------------------------------------- one day
    def step(self) -> dict[str, np.ndarray]:
        """Simulate the next day; return that day's web events (arrays, one row per event)."""
        d = self.next_day
        today = date.fromordinal(self.start.toordinal() + d)
        rng = np.random.default_rng([self.seed, d + 1])
        p = self.people
        day_sec = self.start_sec + d * DAY
        season = MEAN_SEASON if self.stationary else season_factor(today)
        factor = WEEKDAY_FACTOR[today.weekday()] * season

        for key in (
            "late_recent",
            "return_recent",
            "negative_recent",
            "positive_recent",
            "email_recent",
        ):
            p[key] *= DECAY
        self._apply_scheduled(rng, d, day_sec)
        self._random_tickets(rng, d, day_sec)
        clicks = self._email(rng, today, d, day_sec)

        # Engagement: mean-reverting random walk, so interest drifts away and comes back.
        p["engagement"] = (
            0.985 * p["engagement"]
            + 0.015 * p["engagement_mean"]
            + rng.normal(0, 0.09, len(p["engagement"])).astype(np.float32)
        )
        alive = (p["first_seen_day"] <= d) & (p["churn_day"] < 0)
        churn = alive & (rng.random(len(alive)) < self.hazard())
        p["churn_day"][churn] = d
        alive &= ~churn

        if d % SNAPSHOT_EVERY == SNAPSHOT_EVERY - 1:
            self._snapshot(d)
        signed = alive & p["has_contact"] & (p["signup_day"] <= d)
        orders = self._orders(rng, d, day_sec, signed, factor)
        events = self._sessions(rng, d, day_sec, alive, factor, orders, clicks)
        self._surveys_nps(rng, d, day_sec, signed)
        self.next_day += 1
        return events

    def _snapshot(self, d: int) -> None:
        who = np.flatnonzero(self.people["has_contact"])
        self._add(
            "snapshots",
            person_id=who,
            day=np.full(len(who), d, np.int32),
            hazard=self.hazard()[who],
            order_rate=self.order_rate()[who],
            engagement=self.people["engagement"][who].copy(),
        )

    # ----------------------------------------------------------------- orders
