"""Web and app sessions: devices, cookies, logins and the events of each session.

Mixed into ``behaviour.Company``. Returns one day's events as arrays (one row per event);
``eventfiles.py`` turns them into NDJSON lines.
"""

from __future__ import annotations

import numpy as np

from simulator import population as pop
from simulator import vocab
from simulator.choice import search_words
from simulator.ids import new_uuids

DAY = pop.SECONDS_PER_DAY

# Event type codes (index into EVENT_TYPES).
EVENT_TYPES = np.array(
    [
        "page_view",
        "product_view",
        "search",
        "add_to_cart",
        "remove_from_cart",
        "checkout_start",
        "purchase",
        "login",
        "signup",
        "email_click",
    ],
    dtype=object,
)
PAGE_VIEW, PRODUCT_VIEW, SEARCH, ADD, REMOVE, CHECKOUT, PURCHASE, LOGIN, SIGNUP, EMAIL_CLICK = (
    range(10)
)
# Fixed pages: static pages, then one per category, then funnel pages.
PAGES = (
    vocab.STATIC_PAGES
    + [f"/category/{c}" for c in vocab.CATEGORIES]
    + ["/signup", "/login", "/cart", "/checkout", "/checkout/confirmation"]
)
P_SIGNUP, P_LOGIN, P_CART, P_CHECKOUT, P_CONFIRM = range(len(PAGES) - 5, len(PAGES))
N_STATIC = len(vocab.STATIC_PAGES)
# Traffic source codes beyond vocab.TRAFFIC_SOURCES: email landings.
SRC_NEWSLETTER = len(vocab.TRAFFIC_SOURCES)
SRC_PROMO = SRC_NEWSLETTER + 1


class WebMixin:
    def _sessions(
        self,
        rng: np.random.Generator,
        d: int,
        day_sec: int,
        alive: np.ndarray,
        factor: float,
        orders: dict[str, np.ndarray],
        clicks: dict[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        p = self.people
        rate = (
            pop.persona_param("sessions_per_day")[p["persona"]]
            * p["session_mult"]
            * np.exp(p["engagement"])
            * factor
        )
        web_alive = alive & p["has_web"]
        u = rng.random(len(rate))
        browse = np.flatnonzero(web_alive & (u < np.minimum(rate, 0.9)))
        browse = np.concatenate(
            [browse, np.flatnonzero(web_alive & (u < rate * rate * 0.3))]
        )  # some second visits
        signups = np.flatnonzero(web_alive & p["has_contact"] & (p["signup_day"] == d))
        web_orders = np.flatnonzero(orders["web"])
        # Session kinds: 0 browse, 1 signup, 2 purchase, 3 email landing.
        s_person = np.concatenate([browse, signups, orders["buyers"][web_orders], clicks["person"]])
        kind = np.concatenate(
            [
                np.zeros(len(browse), np.int8),
                np.ones(len(signups), np.int8),
                np.full(len(web_orders), 2, np.int8),
                np.full(len(clicks["person"]), 3, np.int8),
            ]
        )
        s_order = np.concatenate(
            [
                np.full(len(browse) + len(signups), -1),
                web_orders,
                np.full(len(clicks["person"]), -1),
            ]
        )
        S = len(s_person)
        start = rng.integers(6 * 3600, 23 * 3600, S)
        start = np.where(rng.random(S) < 0.1, rng.integers(0, 6 * 3600, S), start)  # night owls
        email_s = kind == 3
        start[email_s] = np.clip(clicks["sec"], 0, 23 * 3600)
        # Device: mostly the main one; a purchase in the app must come from an app device.
        dev_start = self.devices["person_dev_start"][s_person]
        dev_n = self.devices["person_dev_count"][s_person]
        main = rng.random(S) < 0.6
        device = dev_start + np.where(main, 0, rng.integers(0, 1 << 20, S) % dev_n)
        # Cookies get cleared now and then: the device gets a new anonymous_id.
        reset = rng.random(S) < 0.02
        reset_dev = np.unique(device[reset])
        if len(reset_dev):
            new = pop.new_cookies(rng, self.devices["person"][reset_dev], d)
            base = len(self.cookies["person"])
            for k in ("anonymous_id", "person", "first_day"):
                self.cookies[k] = np.concatenate([self.cookies[k], new[k]])
            self.cookies["used"] = np.concatenate(
                [self.cookies["used"], np.zeros(len(reset_dev), bool)]
            )
            self.devices["cookie"][reset_dev] = base + np.arange(len(reset_dev))
            self.devices["logged_in"][reset_dev] = False
        cookie = self.devices["cookie"][device]
        self.cookies["used"][cookie] = True
        known = p["has_contact"][s_person] & (p["signup_day"][s_person] <= d)
        logged_before = self.devices["logged_in"][device] & known
        login = (
            known
            & ~logged_before
            & ~(kind == 1)
            & (
                (kind == 2)
                | (rng.random(S) < pop.persona_param("login_prob")[p["persona"][s_person]])
            )
        )
        signup = kind == 1
        logged = logged_before | login | signup
        self.devices["logged_in"][device[logged]] = True
        contact = np.where(logged, self.person_contact[s_person], -1)
        order_local = s_order
        has_order = order_local >= 0
        contact[has_order] = orders["contact"][order_local[has_order]]

        # Events per session, in segments: landing, signup, login, browse, add, remove, checkout, purchase.
        eng = p["engagement"][s_person]
        n_browse = np.minimum(rng.poisson(np.clip(2.5 * np.exp(0.3 * eng), 0.2, 10)), 25)
        n_items = np.zeros(S, np.int64)
        n_items[has_order] = orders["n_items"][order_local[has_order]]
        abandon = ~has_order & (rng.random(S) < 0.12)
        n_add = np.where(has_order, n_items, abandon.astype(int) * (1 + (rng.random(S) < 0.3)))
        n_remove = np.where(abandon & (rng.random(S) < 0.3), 1, 0)
        checkout = has_order | (abandon & (rng.random(S) < 0.35))
        seg_len = np.stack(
            [np.ones(S, int), signup, login, n_browse, n_add, n_remove, checkout, n_items], axis=1
        ).astype(np.int64)
        bounds = np.cumsum(seg_len, axis=1)
        total = bounds[:, -1]
        E = int(total.sum())
        ev_s = np.repeat(np.arange(S), total)
        first_ev = np.concatenate([[0], np.cumsum(total)[:-1]])
        pos = np.arange(E) - first_ev[ev_s]
        seg = (pos[:, None] >= bounds[ev_s, :-1]).sum(axis=1)
        seg_start = np.where(seg > 0, bounds[ev_s, np.maximum(seg - 1, 0)], 0)
        idx_in_seg = pos - seg_start

        browse_type = rng.choice([PAGE_VIEW, PRODUCT_VIEW, SEARCH], E, p=[0.35, 0.5, 0.15])
        etype = np.select(
            [seg == 0, seg == 1, seg == 2, seg == 3, seg == 4, seg == 5, seg == 6],
            [
                np.where(email_s[ev_s], EMAIL_CLICK, PAGE_VIEW),
                SIGNUP,
                LOGIN,
                browse_type,
                ADD,
                REMOVE,
                CHECKOUT,
            ],
            PURCHASE,
        ).astype(np.int8)
        ev_person = s_person[ev_s]
        product = np.full(E, -1, np.int64)
        needs_product = (etype == PRODUCT_VIEW) | (etype == ADD) | (etype == REMOVE)
        product[needs_product] = self.chooser.products(
            rng, p["cat_aff"][ev_person[needs_product]], p["price_level"][ev_person[needs_product]]
        )
        # In purchase sessions the cart and the purchase hold the order's items.
        ev_order = order_local[ev_s]
        in_order = (ev_order >= 0) & ((etype == ADD) | (etype == PURCHASE))
        item = orders["first_item"][ev_order[in_order]] + idx_in_seg[in_order]
        product[in_order] = orders["product"][item]
        price = np.where(
            product >= 0,
            self.catalog["price"].to_numpy()[np.maximum(product, 0)] * self.price_factor,
            np.nan,
        )
        quantity = np.full(E, -1, np.int64)
        quantity[in_order] = orders["qty"][item]
        quantity[(etype == ADD) & ~in_order] = 1
        price[in_order] = orders["unit_price"][item]
        order_id = np.full(E, -1, np.int64)
        purchase = etype == PURCHASE
        order_id[purchase] = orders["order_id"][ev_order[purchase]]

        page = np.full(E, -1, np.int16)
        landing = rng.integers(0, N_STATIC + len(vocab.CATEGORIES), E)
        page[seg == 0] = landing[seg == 0]
        page[(seg == 0) & email_s[ev_s]] = 1  # /sale
        plain_view = (etype == PAGE_VIEW) & (seg == 3)
        page[plain_view] = landing[plain_view]
        page[etype == SIGNUP] = P_SIGNUP
        page[etype == LOGIN] = P_LOGIN
        page[etype == REMOVE] = P_CART
        page[etype == CHECKOUT] = P_CHECKOUT
        page[etype == PURCHASE] = P_CONFIRM
        search = np.full(E, None, dtype=object)
        is_search = etype == SEARCH
        search[is_search] = search_words(
            rng, self.chooser.categories(rng, p["cat_aff"][ev_person[is_search]])
        )

        # Timing: ~40 s between events, a session stays inside one hour and one day.
        gaps = np.where(pos == 0, 0, rng.exponential(40.0, E) + 2.0)
        cs = np.cumsum(gaps)
        offset = np.minimum(cs - cs[first_ev[ev_s]], 3500.0)
        device_ms = (day_sec + start[ev_s]) * 1000 + (offset * 1000).astype(np.int64)
        collector_ms = device_ms + rng.integers(50, 1500, E)
        device_ms = device_ms + rng.integers(-2000, 2000, E)  # device clocks are a little off
        source = rng.choice(len(vocab.TRAFFIC_SOURCES), S, p=vocab.TRAFFIC_WEIGHTS)
        source = np.where(
            email_s,
            np.where(
                np.concatenate([np.zeros(S - len(clicks["promo"]), bool), clicks["promo"]]),
                SRC_PROMO,
                SRC_NEWSLETTER,
            ),
            source,
        )
        campaign = np.full(S, None, dtype=object)
        campaign[email_s] = clicks["campaign"]
        email_contact = np.full(S, -1, np.int64)
        email_contact[email_s] = clicks["contact"]
        user_id = np.where(
            (seg >= 1) & (signup | login)[ev_s] | logged_before[ev_s], contact[ev_s], -1
        )

        # Web orders take their time from the purchase event; then their lifecycle is fixed.
        purchase_ms = np.full(len(orders["buyers"]), -1, np.int64)
        purchase_ms[ev_order[purchase]] = collector_ms[purchase]
        orders["ordered"] = np.where(purchase_ms >= 0, purchase_ms // 1000, orders["ordered"])
        kind_dev = self.devices["kind"][device]
        # The order channel is the platform the purchase was made on.
        in_app = np.array([k[0] != "web" for k in vocab.DEVICE_KINDS])[kind_dev]
        orders["channel"][web_orders] = np.where(in_app[kind == 2], "app", "web")
        self._finish_orders(rng, d, orders)
        return {
            "event_id": new_uuids(rng, E),
            "event_type": etype,
            "device_ms": device_ms,
            "collector_ms": collector_ms,
            "cookie": cookie[ev_s],
            "user_id": user_id,
            "device_kind": kind_dev[ev_s],
            "ua": self.devices["ua"][device][ev_s],
            "page": page,
            "product_id": np.where(product >= 0, product + 1, -1),
            "search": search,
            "price": np.round(price, 2),
            "quantity": quantity,
            "order_id": order_id,
            "email_contact_id": np.where(pos == 0, email_contact[ev_s], -1),
            "source": np.where(pos == 0, source[ev_s], -1),
            "campaign": np.where(pos == 0, campaign[ev_s], None),
            "pos": pos,
            "person": ev_person,
        }
