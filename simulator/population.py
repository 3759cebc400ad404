"""Who is in the demo company: personas, people, their CRM contacts, devices and cookies.

Everything is drawn once, vectorised, from the seed. The day-by-day behaviour in
``behaviour.py`` then moves these people through time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator import vocab
from simulator.ids import new_uuids

SECONDS_PER_DAY = 86_400
BROWSE_BEFORE_DAYS = 45  # a contact's first visits come up to this many days before signing up
# A stationary company opened this long before its first simulated day: no one's first
# visit is earlier (an uncapped steady-state age would date some contacts to the 1950s).
MAX_TENURE_DAYS = 20 * 365


@dataclass(frozen=True)
class Persona:
    name: str
    share: float  # share of CRM persons (anonymous visitors are separate)
    web_prob: float  # chance the person uses the website / app at all
    sessions_per_day: float
    orders_per_day: float
    hazard_per_day: float  # baseline daily churn hazard
    login_prob: float  # chance a session of a known person logs in
    return_prob: float
    gets_promos: bool  # also receives the weekly promo email (fatigue)


PERSONAS = [
    Persona("loyal", 0.20, 0.95, 1 / 8, 1 / 30, 0.0004, 0.75, 0.04, False),
    Persona("bargain_hunter", 0.20, 0.95, 1 / 7, 1 / 45, 0.0010, 0.55, 0.07, True),
    Persona("casual", 0.30, 0.85, 1 / 20, 1 / 100, 0.0012, 0.45, 0.06, False),
    Persona("browser", 0.10, 1.00, 1 / 6, 1 / 250, 0.0010, 0.35, 0.10, False),
    Persona("offline", 0.10, 0.00, 0.0, 1 / 60, 0.0008, 0.0, 0.05, False),
    Persona("lead", 0.10, 0.50, 1 / 30, 0.0, 0.0015, 0.30, 0.0, False),
    # Anonymous visitors: web only, never a CRM contact, most come a few times and go.
    Persona("visitor", 0.0, 1.00, 1 / 12, 0.0, 0.0100, 0.0, 0.0, False),
]
VISITOR = len(PERSONAS) - 1
LEAD = 5
OFFLINE = 4
PERSONA_NAMES = np.array([p.name for p in PERSONAS])


def persona_param(field: str) -> np.ndarray:
    return np.array([getattr(p, field) for p in PERSONAS])


def make_catalog(rng: np.random.Generator, n_products: int, start_sec: int) -> pd.DataFrame:
    """Products with categories, brands, prices, popularity and a complement partner."""
    cats = np.arange(n_products) % len(vocab.CATEGORIES)
    rng.shuffle(cats)
    cats = np.sort(cats)  # products of a category are contiguous: product choice uses offsets
    brand = rng.integers(0, len(vocab.BRANDS), n_products)
    median = np.array([vocab.CATEGORY_PRICE[vocab.CATEGORIES[c]] for c in cats], dtype=float)
    price = np.round(median * rng.lognormal(0.0, 0.5, n_products), 0) - 0.01
    price = np.maximum(price, 2.99)
    # Zipf-like popularity inside each category: a few best sellers, a long tail.
    popularity = rng.pareto(1.2, n_products) + 0.05
    noun_idx = rng.integers(0, 5, n_products)
    names = [
        f"{vocab.BRANDS[b]} {vocab.PRODUCT_NOUNS[vocab.CATEGORIES[c]][k]} {i % 97 + 1}"
        for i, (b, c, k) in enumerate(zip(brand, cats, noun_idx, strict=True))
    ]
    # Complements: each product has a partner in a "neighbouring" category (tent -> headlamp,
    # grinder -> beans). Bought together often, which gives recommendations real pairs.
    partner_cat = (cats + rng.choice([0, 1], n_products, p=[0.6, 0.4])) % len(vocab.CATEGORIES)
    starts = np.searchsorted(cats, np.arange(len(vocab.CATEGORIES)))
    counts = np.bincount(cats, minlength=len(vocab.CATEGORIES))
    complement = (
        starts[partner_cat]
        + rng.integers(0, counts[partner_cat].max(), n_products) % counts[partner_cat]
    )
    complement = np.where(
        complement == np.arange(n_products), (complement + 1) % n_products, complement
    )
    created = start_sec - rng.integers(30, 900, n_products) * SECONDS_PER_DAY
    discontinued = rng.random(n_products) < 0.06
    return pd.DataFrame(
        {
            "product_id": np.arange(1, n_products + 1, dtype=np.int64),
            "name": names,
            "category": np.array(vocab.CATEGORIES)[cats],
            "brand": np.array(vocab.BRANDS)[brand],
            "price": price,
            "is_discontinued": discontinued,
            "created_sec": created,
            "cat_idx": cats,
            "popularity": popularity,
            "complement": complement,
        }
    )


def make_people(
    rng: np.random.Generator, customers: int, visitors: int, days: int, n_cats: int
) -> dict[str, np.ndarray]:
    """Latent traits for every person (CRM persons first, then anonymous visitors)."""
    n = customers + visitors
    shares = np.array([p.share for p in PERSONAS[:VISITOR]])
    persona = np.concatenate(
        [
            rng.choice(VISITOR, customers, p=shares / shares.sum()),
            np.full(visitors, VISITOR),
        ]
    ).astype(np.int8)
    has_contact = np.arange(n) < customers
    has_web = rng.random(n) < persona_param("web_prob")[persona]
    # Half the contacts existed before the simulated window, half sign up during it.
    signup = np.where(
        rng.random(n) < 0.5, -rng.integers(1, 730, n), rng.integers(0, days, n)
    ).astype(np.int32)
    browse_before = rng.integers(0, BROWSE_BEFORE_DAYS, n)
    first_seen = np.where(has_contact, signup - browse_before, rng.integers(0, days, n))
    first_seen = np.maximum(first_seen, np.minimum(signup, 0)).astype(np.int32)
    # Category affinities: a concentrated Dirichlet, so people have 2-3 favourite categories.
    cat_aff = rng.dirichlet(np.full(n_cats, 0.25), n).astype(np.float32)
    return {
        "persona": persona,
        "has_contact": has_contact,
        "has_web": has_web,
        "signup_day": signup,
        "first_seen_day": first_seen,
        "price_level": rng.choice(3, n, p=[0.3, 0.4, 0.3]).astype(np.int8),
        "cat_aff": cat_aff,
        "engagement_mean": rng.normal(0.0, 0.35, n).astype(np.float32),
        "engagement": rng.normal(0.0, 0.5, n).astype(np.float32),
        "order_mult": rng.lognormal(0.0, 0.5, n).astype(np.float32),
        "session_mult": rng.lognormal(0.0, 0.4, n).astype(np.float32),
        "hazard_mult": rng.lognormal(0.0, 0.3, n).astype(np.float32),
        "churn_day": np.full(n, -1, dtype=np.int32),  # -1: not churned (yet)
        # Decayed counts of experiences (half-life ~70 days): they drive the churn hazard.
        "late_recent": np.zeros(n, np.float32),
        "return_recent": np.zeros(n, np.float32),
        "negative_recent": np.zeros(n, np.float32),
        "positive_recent": np.zeros(n, np.float32),
        "email_recent": np.zeros(n, np.float32),
        "n_orders": np.zeros(n, np.int32),
        "unsubscribed": np.zeros(n, bool),
    }


def steady_timing(
    rng: np.random.Generator, people: dict[str, np.ndarray], lifetime: np.ndarray, days: int
) -> None:
    """Re-time ``people`` as a company in steady state through the simulated days [0, days).

    ``lifetime``: each person's expected days from first visit to churn. A constant daily
    inflow F of people like a given one keeps F·L of them in the company and brings F·days
    during the window, so each person is one already there on day 0 with probability
    L / (L + days), otherwise a newcomer whose first visit is uniform in the window. Those
    already there have the age (days since their first visit) of a steady state under a
    constant hazard: exponential with mean L (capped at :data:`MAX_TENURE_DAYS`). Contacts
    sign up 0-44 days after their first visit, as in :func:`make_people`.
    """
    n = len(lifetime)
    present = rng.random(n) < lifetime / (lifetime + days)
    age = np.minimum(rng.exponential(lifetime), MAX_TENURE_DAYS)
    first = np.where(present, -1 - np.floor(age), rng.integers(0, days, n)).astype(np.int32)
    people["first_seen_day"] = first
    people["signup_day"] = (first + rng.integers(0, BROWSE_BEFORE_DAYS, n)).astype(np.int32)


def make_contacts(
    rng: np.random.Generator, people: dict[str, np.ndarray], start_sec: int
) -> pd.DataFrame:
    """CRM contacts: one per CRM person, ~3 % entered twice, a few soft-deleted."""
    pid = np.flatnonzero(people["has_contact"])
    n = len(pid)
    first = np.array(vocab.FIRST_NAMES)[rng.integers(0, len(vocab.FIRST_NAMES), n)]
    last = np.array(vocab.LAST_NAMES)[rng.integers(0, len(vocab.LAST_NAMES), n)]
    domain = np.array(vocab.EMAIL_DOMAINS)[rng.integers(0, len(vocab.EMAIL_DOMAINS), n)]
    num = rng.integers(1, 999, n).astype(str)
    email = np.char.add(
        np.char.add(np.char.add(np.char.add(np.char.lower(first), "."), np.char.lower(last)), num),
        np.char.add("@", domain),
    ).astype(object)
    # Real people do not share an address: a random name+number collision would make two
    # persons one in the pipeline (rightly, by email) but not in the ground truth. The
    # underscore form cannot collide with the name+number form.
    clash = pd.Series(email).duplicated().to_numpy()
    for i in np.flatnonzero(clash):
        email[i] = f"{first[i].lower()}.{last[i].lower()}_{pid[i]}@{domain[i]}"
    phone = np.char.add("+44 7700 9", rng.integers(10000, 99999, n).astype(str)).astype(object)
    phone[rng.random(n) < 0.35] = None
    created = (
        start_sec
        + people["signup_day"][pid].astype(np.int64) * SECONDS_PER_DAY
        + rng.integers(6 * 3600, 22 * 3600, n)
    )
    persona = people["persona"][pid]
    stage = np.where(
        persona == LEAD, np.where(rng.random(n) < 0.5, "subscriber", "lead"), "lead"
    ).astype(object)
    # Contacts that existed before the window and buy are already customers on day one.
    stage[(people["signup_day"][pid] < 0) & (persona != LEAD)] = "customer"
    stage[rng.random(n) < 0.02] = "other"
    deleted = rng.random(n) < 0.03
    deleted_sec = np.where(
        deleted, np.maximum(created, start_sec) + rng.integers(1, 300, n) * SECONDS_PER_DAY, -1
    )
    contacts = pd.DataFrame(
        {
            "person_id": pid.astype(np.int64),
            "first_name": first.astype(object),
            "last_name": last.astype(object),
            "email": email,
            "phone": phone,
            "country": rng.choice(vocab.COUNTRIES, n, p=vocab.COUNTRY_WEIGHTS),
            "stage0": stage,
            "consent0": rng.random(n) < 0.70,
            "owner": np.array(vocab.OWNERS)[rng.integers(0, len(vocab.OWNERS), n)],
            "created_sec": created,
            "deleted_sec": deleted_sec,
            "is_duplicate": False,
        }
    )
    # The same person typed in a second time (a store visit, a phone order): same email but
    # with different case or stray whitespace, created later, usually without consent.
    dup_idx = np.flatnonzero(rng.random(n) < 0.03)
    dups = contacts.iloc[dup_idx].copy()
    variant = rng.integers(0, 3, len(dups))
    e = dups["email"].to_numpy(dtype=str)
    e = np.where(
        variant == 0,
        np.char.upper(e),
        np.where(variant == 1, np.char.add(" ", e), np.char.add(np.char.title(e), " ")),
    )
    dups["email"] = e.astype(object)
    dups["created_sec"] = dups["created_sec"] + rng.integers(10, 200, len(dups)) * SECONDS_PER_DAY
    dups["consent0"] = rng.random(len(dups)) < 0.3
    dups["deleted_sec"] = -1
    dups["is_duplicate"] = True
    contacts = pd.concat([contacts, dups], ignore_index=True)
    contacts = contacts.sort_values(["created_sec", "person_id"], kind="stable").reset_index(
        drop=True
    )
    contacts.insert(0, "contact_id", np.arange(1, len(contacts) + 1, dtype=np.int64))
    contacts["customer_sec"] = np.int64(-1)
    contacts["evangelist_sec"] = np.int64(-1)
    contacts["unsubscribed_sec"] = np.int64(-1)
    return contacts


def make_devices(rng: np.random.Generator, people: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each web person owns 1-3 devices; each device carries a cookie (anonymous_id)."""
    web = np.flatnonzero(people["has_web"])
    n_dev = rng.choice([1, 2, 3], len(web), p=[0.72, 0.22, 0.06])
    dev_person = np.repeat(web, n_dev)
    kind = rng.choice(len(vocab.DEVICE_KINDS), len(dev_person), p=vocab.DEVICE_KIND_WEIGHTS)
    ua_count = np.array([len(vocab.USER_AGENTS[k]) for k in vocab.DEVICE_KINDS])
    ua_offset = np.concatenate([[0], np.cumsum(ua_count)[:-1]])
    ua = ua_offset[kind] + rng.integers(0, 1 << 30, len(kind)) % ua_count[kind]
    n_people = len(people["persona"])
    dev_start = np.full(n_people, -1, dtype=np.int64)
    dev_count = np.zeros(n_people, dtype=np.int64)
    dev_start[web] = np.concatenate([[0], np.cumsum(n_dev)[:-1]])
    dev_count[web] = n_dev
    # Devices are used with unequal weight: the first is the main one.
    return {
        "person": dev_person.astype(np.int64),
        "kind": kind.astype(np.int8),
        "ua": ua.astype(np.int16),
        "cookie": np.arange(len(dev_person), dtype=np.int64),  # index into the cookie registry
        "logged_in": np.zeros(len(dev_person), bool),
        "person_dev_start": dev_start,
        "person_dev_count": dev_count,
    }


def new_cookies(rng: np.random.Generator, persons: np.ndarray, day: int) -> dict[str, np.ndarray]:
    return {
        "anonymous_id": new_uuids(rng, len(persons)),
        "person": persons.astype(np.int64),
        "first_day": np.full(len(persons), day, np.int32),
    }


USER_AGENT_LIST = [ua for kind in vocab.DEVICE_KINDS for ua in vocab.USER_AGENTS[kind]]
