"""Email marketing: newsletters and promos, opens, clicks (landing on the site), unsubscribes.

Mixed into ``behaviour.Company``. Every email sent adds to the person's email fatigue.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from simulator import population as pop

DAY = pop.SECONDS_PER_DAY


class MarketingMixin:
    def _email(
        self, rng: np.random.Generator, today: date, d: int, day_sec: int
    ) -> dict[str, np.ndarray]:
        """Newsletter every other Tuesday to consenting contacts; promo every Friday to deal seekers."""
        empty = {
            "person": np.zeros(0, np.int64),
            "contact": np.zeros(0, np.int64),
            "sec": np.zeros(0, np.int64),
            "campaign": np.zeros(0, object),
            "promo": np.zeros(0, bool),
        }
        iso = today.isocalendar()
        newsletter = today.weekday() == 1 and iso.week % 2 == 0
        promo = today.weekday() == 4
        if not (newsletter or promo):
            return empty
        c = self.contacts
        p = self.people
        sent_sec = day_sec + 7 * 3600
        ok = (
            c["consent0"].to_numpy()
            & (c["created_sec"].to_numpy() <= sent_sec)
            & ((c["deleted_sec"].to_numpy() < 0) | (c["deleted_sec"].to_numpy() > sent_sec))
            & (c["unsubscribed_sec"].to_numpy() < 0)
        )
        person = c["person_id"].to_numpy()
        if promo:
            ok &= np.array([pop.PERSONAS[i].gets_promos for i in range(len(pop.PERSONAS))])[
                p["persona"][person]
            ]
        campaign = f"{iso.year}-w{iso.week:02d}-{'promo' if promo else 'newsletter'}"
        rows = np.flatnonzero(ok)
        who = person[rows]
        contact = c["contact_id"].to_numpy()[rows]
        n = len(rows)
        p["email_recent"][who] += 1.0
        alive = p["churn_day"][who] < 0
        open_p = np.where(alive, np.clip(0.25 * np.exp(0.5 * p["engagement"][who]), 0, 0.8), 0.02)
        opened = rng.random(n) < open_p
        clicked = opened & (rng.random(n) < 0.18)
        unsub = opened & (rng.random(n) < 0.002 * (1 + p["email_recent"][who]))
        open_sec = sent_sec + rng.integers(600, 2 * DAY, n)
        open_sec = np.minimum(
            open_sec, day_sec + DAY - 7200
        )  # keep the click landing on the same day
        click_sec = open_sec + rng.integers(5, 300, n)
        kinds = [
            ("sent", np.ones(n, bool), np.full(n, sent_sec)),
            ("open", opened, open_sec),
            ("click", clicked, click_sec),
            ("unsubscribe", unsub, click_sec + 30),
        ]
        for kind, sel, sec in kinds:
            m = int(sel.sum())
            self._add(
                "email_events",
                email_event_id=self._next_ids("email_event_id", m),
                contact_id=contact[sel],
                campaign_id=np.full(m, campaign, dtype=object),
                event_type=np.full(m, kind, dtype=object),
                occurred_sec=sec[sel],
            )
        us = c["unsubscribed_sec"].to_numpy().copy()
        us[rows[unsub]] = click_sec[unsub] + 30
        c["unsubscribed_sec"] = us
        p["unsubscribed"][who[unsub]] = True
        web_click = clicked & p["has_web"][who] & alive
        return {
            "person": who[web_click],
            "contact": contact[web_click],
            "sec": click_sec[web_click] - day_sec,
            "campaign": np.full(int(web_click.sum()), campaign, dtype=object),
            "promo": np.full(int(web_click.sum()), promo),
        }
