"""Customer service and voice of the customer: tickets whose tone follows the experience, surveys.

Mixed into ``behaviour.Company``.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from simulator import population as pop
from simulator import vocab

DAY = pop.SECONDS_PER_DAY


class ServiceMixin:
    def _tickets(
        self,
        rng: np.random.Generator,
        person: np.ndarray,
        contact: np.ndarray,
        order_id: np.ndarray,
        tone: np.ndarray,
        created: np.ndarray,
    ) -> None:
        n = len(person)
        if n == 0:
            return
        negative = np.isin(
            tone, [vocab.TICKET_TONES.index(t) for t in ("late", "return", "complaint")]
        )
        positive = tone == vocab.TICKET_TONES.index("praise")
        np.add.at(self.people["negative_recent"], person[negative], 1.0)
        np.add.at(self.people["positive_recent"], person[positive], 1.0)
        np.subtract.at(self.people["engagement"], person[negative], 0.2)
        first_reply = created + rng.integers(600, DAY, n)
        resolved = first_reply + np.where(
            negative, rng.integers(3600, 6 * DAY, n), rng.integers(600, DAY, n)
        )
        priority = np.where(
            negative,
            np.where(rng.random(n) < 0.3, "high", "normal"),
            np.where(rng.random(n) < 0.5, "low", "normal"),
        ).astype(object)
        priority[negative & (rng.random(n) < 0.05)] = "urgent"
        self._add(
            "tickets",
            ticket_id=self._next_ids("ticket_id", n),
            contact_id=contact,
            person_id=person,
            order_id=order_id,
            tone=tone.astype(np.int8),
            template=rng.integers(0, 3, n).astype(np.int8),
            created_sec=created,
            pending_sec=first_reply,
            resolved_sec=resolved,
            closed_sec=resolved + 3 * DAY,
            priority=priority,
        )

    def _random_tickets(self, rng: np.random.Generator, d: int, day_sec: int) -> None:
        p = self.people
        signed = (
            p["has_contact"] & (p["signup_day"] <= d) & (p["churn_day"] < 0) & (p["n_orders"] > 0)
        )
        u = rng.random(len(signed))
        complaint = signed & (u < 0.0004)
        question = signed & (u >= 0.0004) & (u < 0.0012)
        who = np.flatnonzero(complaint | question)
        tone = np.where(
            complaint[who],
            vocab.TICKET_TONES.index("complaint"),
            vocab.TICKET_TONES.index("question"),
        )
        self._tickets(
            rng,
            who,
            self.person_contact[who],
            np.full(len(who), -1),
            tone,
            day_sec + rng.integers(7 * 3600, 21 * 3600, len(who)),
        )

    def _survey(
        self,
        rng: np.random.Generator,
        contact: np.ndarray,
        kind: str,
        score: np.ndarray,
        sec: np.ndarray,
    ) -> None:
        n = len(contact)
        if n == 0:
            return
        top = 5 if kind == "csat" else 10
        band = np.where(score <= top * 0.5, "bad", np.where(score >= top * 0.8, "good", "mid"))
        comment = np.empty(n, dtype=object)
        for name, texts in vocab.SURVEY_COMMENTS.items():
            sel = band == name
            comment[sel] = np.array(texts, dtype=object)[rng.integers(0, len(texts), sel.sum())]
        comment[rng.random(n) < 0.5] = None
        self._add(
            "survey_responses",
            survey_response_id=self._next_ids("survey_response_id", n),
            contact_id=contact,
            survey_type=np.full(n, kind, dtype=object),
            score=score,
            comment=comment,
            responded_sec=sec,
        )

    def _surveys_nps(
        self, rng: np.random.Generator, d: int, day_sec: int, signed: np.ndarray
    ) -> None:
        # An NPS survey each quarter to 6 % of known, active people.
        today = date.fromordinal(self.start.toordinal() + d)
        if not (today.day == 15 and today.month in (3, 6, 9, 12)):
            return
        p = self.people
        who = np.flatnonzero(signed & (rng.random(len(signed)) < 0.06))
        score = np.clip(
            np.round(
                7.6
                + 1.5 * p["engagement"][who]
                - 2.0 * p["negative_recent"][who]
                - 1.5 * p["late_recent"][who]
                + rng.normal(0, 1.5, len(who))
            ),
            0,
            10,
        ).astype(np.int64)
        sec = day_sec + rng.integers(8 * 3600, 23 * 3600, len(who))
        self._survey(rng, self.person_contact[who], "nps", score, sec)
        # Promoters with a few orders become evangelists.
        promoters = who[(score >= 9) & (p["n_orders"][who] >= 3)]
        rows = self.contact_row.loc[self.person_contact[promoters]].to_numpy()
        ev = self.contacts["evangelist_sec"].to_numpy().copy()
        fresh = ev[rows] < 0
        ev[rows[fresh]] = sec[(score >= 9) & (p["n_orders"][who] >= 3)][fresh]
        self.contacts["evangelist_sec"] = ev
