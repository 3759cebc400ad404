"""Orders: who buys what, and each order's lifecycle (shipping, late delivery, return).

Mixed into ``behaviour.Company``; methods use its state (people, contacts, catalog, tables).
"""

from __future__ import annotations

from datetime import date

import numpy as np

from simulator import population as pop
from simulator import vocab

DAY = pop.SECONDS_PER_DAY
LATE_SHARE, LATE_SHARE_DECEMBER = 0.08, 0.15  # deliveries that come late (the peak: more)
# A stationary company has no season: December's extra late deliveries spread over the year.
MEAN_LATE_SHARE = LATE_SHARE + (LATE_SHARE_DECEMBER - LATE_SHARE) * 31 / 365


class CommerceMixin:
    def _orders(
        self, rng: np.random.Generator, d: int, day_sec: int, signed: np.ndarray, factor: float
    ) -> dict[str, np.ndarray]:
        p = self.people
        rate = self.order_rate() * factor
        buyers = np.flatnonzero(signed & (rng.random(len(rate)) < rate))
        n = len(buyers)
        persona = p["persona"][buyers]
        web = p["has_web"][buyers] & (rng.random(n) < 0.9)
        # Web orders happen inside a session (time set there); store/phone in opening hours.
        ordered = day_sec + rng.integers(9 * 3600, 20 * 3600, n)
        channel = np.where(web, "web", np.where(rng.random(n) < 0.7, "store", "phone")).astype(
            object
        )
        contact = self.person_contact[buyers].copy()
        use2 = (
            (self.person_contact2[buyers] > 0)
            & (self.contact2_sec[buyers] <= ordered)
            & (rng.random(n) < 0.3)
        )
        contact[use2] = self.person_contact2[buyers][use2]
        order_id = self._next_ids("order_id", n)

        # Items: first by taste, later ones often the first item's complement.
        n_items = 1 + rng.poisson(0.7, n)
        n_items = np.minimum(n_items, 6)
        item_order = np.repeat(np.arange(n), n_items)
        first_item = np.concatenate([[0], np.cumsum(n_items)[:-1]])
        rank = np.arange(len(item_order)) - first_item[item_order]
        prod = self.chooser.products(
            rng, p["cat_aff"][buyers[item_order]], p["price_level"][buyers[item_order]]
        )
        comp = self.catalog["complement"].to_numpy()
        take_comp = (rank > 0) & (rng.random(len(prod)) < 0.4)
        prod[take_comp] = comp[prod[first_item[item_order]][take_comp]]
        price = self.catalog["price"].to_numpy()[prod] * self.price_factor
        promo = rng.random(len(prod)) < np.where(
            p["price_level"][buyers[item_order]] == 2, 0.5, 0.15
        )
        unit_price = np.round(price * np.where(promo, 0.8, 1.0), 2)
        qty = 1 + rng.poisson(0.25, len(prod))
        total = np.round(np.bincount(item_order, weights=unit_price * qty, minlength=n), 2)
        p["n_orders"][buyers] += 1
        return {
            "buyers": buyers,
            "web": web,
            "ordered": ordered,
            "channel": channel,
            "contact": contact,
            "order_id": order_id,
            "n_items": n_items,
            "first_item": first_item,
            "item_order": item_order,
            "product": prod,
            "unit_price": unit_price,
            "qty": qty,
            "total": total,
            "persona": persona,
        }

    def _finish_orders(self, rng: np.random.Generator, d: int, o: dict[str, np.ndarray]) -> None:
        """Decide each order's lifecycle at checkout and schedule its delivery and return."""
        n = len(o["buyers"])
        if n == 0:
            return
        ordered = o["ordered"]
        store = np.isin(o["channel"], ["store"])
        today = date.fromordinal(self.start.toordinal() + d)
        p_late = LATE_SHARE_DECEMBER if today.month == 12 else LATE_SHARE
        if self.stationary:
            p_late = MEAN_LATE_SHARE
        cancelled = ~store & (rng.random(n) < 0.03)
        shipped = np.where(store, ordered, ordered + rng.integers(4 * 3600, 48 * 3600, n))
        promised_day = (ordered - self.start_sec) // DAY + rng.integers(3, 6, n)
        promised = self.start_sec + promised_day * DAY + 20 * 3600
        late = ~store & ~cancelled & (rng.random(n) < p_late)
        on_time = shipped + rng.integers(12 * 3600, 60 * 3600, n)
        delivered = np.where(
            store,
            ordered,
            np.where(
                late,
                promised + rng.integers(1, 9, n) * DAY + rng.integers(0, 8 * 3600, n),
                np.minimum(on_time, promised - 3600),
            ),
        )
        persona_ret = pop.persona_param("return_prob")[o["persona"]]
        returned = ~cancelled & (rng.random(n) < np.where(late, persona_ret + 0.15, persona_ret))
        returned_sec = np.where(returned, delivered + rng.integers(2, 21, n) * DAY, -1)
        cancelled_sec = np.where(cancelled, ordered + rng.integers(600, 10 * 3600, n), -1)
        self._add(
            "orders",
            order_id=o["order_id"],
            contact_id=o["contact"],
            person_id=o["buyers"],
            ordered_sec=ordered,
            channel=o["channel"],
            total_amount=o["total"],
            promised_sec=np.where(store, ordered, promised),
            shipped_sec=np.where(cancelled, -1, shipped),
            delivered_sec=np.where(cancelled, -1, delivered),
            cancelled_sec=cancelled_sec,
            returned_sec=returned_sec,
            is_late=late,
        )
        self._add(
            "order_items",
            order_item_id=self._next_ids("order_item_id", len(o["product"])),
            order_id=o["order_id"][o["item_order"]],
            product_id=o["product"] + 1,
            quantity=o["qty"],
            unit_price=o["unit_price"],
            created_sec=ordered[o["item_order"]],
        )
        # Contacts become customers at their first order.
        rows = self.contact_row.loc[o["contact"]].to_numpy()
        cust = self.contacts["customer_sec"].to_numpy().copy()
        first = cust[rows] < 0
        cust[rows[first]] = ordered[first]
        self.contacts["customer_sec"] = cust
        # Deliveries and returns are experiences felt on the day they happen.
        ok = ~cancelled
        sched = {
            "day": np.concatenate(
                [
                    (delivered[ok] - self.start_sec) // DAY,
                    (returned_sec[returned] - self.start_sec) // DAY,
                ]
            ),
            "kind": np.concatenate([np.zeros(ok.sum(), np.int8), np.ones(returned.sum(), np.int8)]),
            "person": np.concatenate([o["buyers"][ok], o["buyers"][returned]]),
            "contact": np.concatenate([o["contact"][ok], o["contact"][returned]]),
            "order_id": np.concatenate([o["order_id"][ok], o["order_id"][returned]]),
            "late": np.concatenate([late[ok], late[returned]]),
            "sec": np.concatenate([delivered[ok], returned_sec[returned]]),
        }
        self._add("scheduled", **sched)

    def _apply_scheduled(self, rng: np.random.Generator, d: int, day_sec: int) -> None:
        if not self.tables["scheduled"]:
            return
        sched = {
            k: np.concatenate([c[k] for c in self.tables["scheduled"]])
            for k in self.tables["scheduled"][0]
        }
        due = sched["day"] <= d
        keep = {k: v[~due] for k, v in sched.items()}
        self.tables["scheduled"] = [keep] if len(keep["day"]) else []
        if not due.any():
            return
        s = {k: v[due] for k, v in sched.items()}
        p = self.people
        late = (s["kind"] == 0) & s["late"]
        ret = s["kind"] == 1
        np.add.at(p["late_recent"], s["person"][late], 1.0)
        np.add.at(p["return_recent"], s["person"][ret], 1.0)
        np.subtract.at(p["engagement"], s["person"][late | ret], 0.25)
        u = rng.random(len(s["day"]))
        tone = np.full(len(u), -1)
        tone[late & (u < 0.45)] = vocab.TICKET_TONES.index("late")
        tone[ret & (u < 0.5)] = vocab.TICKET_TONES.index("return")
        happy = (s["kind"] == 0) & ~s["late"] & (u < 0.02)
        tone[happy] = vocab.TICKET_TONES.index("praise")
        sel = tone >= 0
        self._tickets(
            rng,
            s["person"][sel],
            s["contact"][sel],
            s["order_id"][sel],
            tone[sel],
            s["sec"][sel] + rng.integers(1800, 86400 // 2, sel.sum()),
        )
        # CSAT after some deliveries: the score follows the experience.
        delivered = s["kind"] == 0
        resp = delivered & (rng.random(len(u)) < 0.08) & (p["churn_day"][s["person"]] < 0)
        score = np.clip(
            np.round(
                4.4
                - 2.2 * s["late"][resp]
                - 0.8 * p["negative_recent"][s["person"][resp]]
                + rng.normal(0, 0.7, resp.sum())
            ),
            1,
            5,
        ).astype(np.int64)
        self._survey(
            rng,
            s["contact"][resp],
            "csat",
            score,
            s["sec"][resp] + rng.integers(3600, 3 * DAY, resp.sum()),
        )
