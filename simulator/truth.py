"""Ground truth for evaluation (``<out>/truth/``): who is who, who churned, what was dirty."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from simulator import population as pop
from simulator import vocab
from simulator.behaviour import Company
from simulator.export import CRM_IDS, text_id, text_ids
from simulator.state import (
    BATCH_ROWS,
    frames,
    rechunk,
    to_arrow,
    write_parquet,
    write_parquet_batches,
)

TOP_ITEMS = 50


def _dates(start: date, days: np.ndarray) -> pd.Series:
    return pd.Series(np.datetime64(start, "D") + days.astype("timedelta64[D]")).dt.date


def write_truth(
    company: Company,
    out: Path,
    dirty_events: pd.DataFrame,
    dirty_crm: pd.DataFrame,
    text: bool = False,
) -> dict[str, int]:
    """The truth files; ``text``: the CRM ids in them in the sources' text form."""
    t = out / "truth"

    def ids(kind: str, values: np.ndarray | pd.Series) -> np.ndarray | pd.Series:
        return text_ids(kind, np.asarray(values)) if text else values

    p = company.people
    n = len(p["persona"])
    churn = p["churn_day"]
    persons = pd.DataFrame(
        {
            "person_id": np.arange(n, dtype=np.int64),
            "persona": pop.PERSONA_NAMES[p["persona"]],
            "has_contact": p["has_contact"],
            "has_web": p["has_web"],
            "signup_date": _dates(company.start, p["signup_day"]).where(p["has_contact"]),
            "first_seen_date": _dates(company.start, p["first_seen_day"]),
            "churned": churn >= 0,
            "churn_date": _dates(company.start, np.maximum(churn, 0)).where(churn >= 0),
            "engagement_mean": p["engagement_mean"],
            "engagement_now": p["engagement"],
            "hazard_now": company.hazard(),
            "order_rate_now": company.order_rate(),
            "price_level": p["price_level"],
            "n_orders": p["n_orders"],
            "late_recent": p["late_recent"],
            "negative_recent": p["negative_recent"],
        }
    )
    write_parquet(persons, t / "persons.parquet")
    c = company.contacts
    write_parquet(
        c[["contact_id", "person_id", "is_duplicate"]].assign(
            contact_id=ids("contact", c["contact_id"])
        ),
        t / "contact_persons.parquet",
    )
    used = np.flatnonzero(company.cookies["used"])
    write_parquet_batches(rechunk(_cookie_tables(company, used)), t / "anonymous_persons.parquet")
    write_parquet_batches(
        (to_arrow(_snapshot_rows(company.start, b)) for b in frames(company, "snapshots")),
        t / "hazard_snapshots.parquet",
    )
    who = np.flatnonzero(p["has_contact"] | p["has_web"])
    write_parquet_batches(
        rechunk(_affinity_tables(company, who, ids)), t / "item_affinities.parquet"
    )
    # Batch by batch, as the tables are stored (state.frames): a row group each.
    order_cols = ["order_id", "person_id", "contact_id", "is_late", "returned_sec", "cancelled_sec"]
    write_parquet_batches(
        (to_arrow(_order_rows(b, ids)) for b in frames(company, "orders", order_cols)),
        t / "order_experiences.parquet",
    )
    write_parquet_batches(
        (
            to_arrow(_ticket_rows(b, ids))
            for b in frames(company, "tickets", ["ticket_id", "person_id", "tone"])
        ),
        t / "ticket_tones.parquet",
    )
    write_parquet(dirty_events, t / "dirty_events.parquet")
    dirty_crm = dirty_crm.astype({"id": np.int64})
    if text:  # the primary key of the row, as the CRM table holds it
        kinds = {table: next(iter(columns.values())) for table, columns in CRM_IDS.items()}
        dirty_crm["id"] = [
            text_id(kinds[table], n)
            for table, n in zip(dirty_crm["table"], dirty_crm["id"], strict=True)
        ]
    write_parquet(dirty_crm, t / "dirty_crm.parquet")
    return {"persons": n, "anonymous_ids": len(used)}


Ids = Callable[[str, np.ndarray | pd.Series], np.ndarray | pd.Series]


def _affinity_tables(company: Company, who: np.ndarray, ids: Ids) -> Iterator[pa.Table]:
    """truth/item_affinities of the people ``who``, about a row group of them at a time:
    :data:`TOP_ITEMS` rows a person, too many to build at once for a large company."""
    p = company.people
    step = max(1, BATCH_ROWS // TOP_ITEMS)
    for lo in range(0, max(len(who), 1), step):  # once when nobody: the file keeps its columns
        part = who[lo : lo + step]
        idx, val = company.chooser.affinity_top(
            p["cat_aff"][part], p["price_level"][part], TOP_ITEMS
        )
        k = idx.shape[1]
        yield to_arrow(
            pd.DataFrame(
                {
                    "person_id": np.repeat(part, k),
                    "product_id": ids("product", idx.ravel().astype(np.int64) + 1),
                    "affinity": val.ravel(),
                    "rank": np.tile(np.arange(1, k + 1, dtype=np.int16), len(part)),
                }
            )
        )


def _cookie_tables(company: Company, used: np.ndarray) -> Iterator[pa.Table]:
    """truth/anonymous_persons of the cookies ``used``, a row group at a time: cookies
    grow with people and days (cleared cookies), and their text and dates are Python objects."""
    ck = company.cookies
    for lo in range(0, max(len(used), 1), BATCH_ROWS):  # once when none: the file keeps its columns
        part = used[lo : lo + BATCH_ROWS]
        yield to_arrow(
            pd.DataFrame(
                {
                    "anonymous_id": ck["anonymous_id"][part].astype(str),
                    "person_id": ck["person"][part],
                    "first_date": _dates(company.start, ck["first_day"][part]),
                }
            )
        )


def _snapshot_rows(start: date, snaps: pd.DataFrame) -> pd.DataFrame:
    snaps["date"] = _dates(start, snaps.pop("day").to_numpy())
    return snaps[["person_id", "date", "hazard", "order_rate", "engagement"]]


def _order_rows(orders: pd.DataFrame, ids: Ids) -> pd.DataFrame:
    return orders[["order_id", "person_id", "contact_id", "is_late"]].assign(
        order_id=ids("order", orders["order_id"]),
        contact_id=ids("contact", orders["contact_id"]),
        is_returned=orders["returned_sec"] >= 0,
        is_cancelled=orders["cancelled_sec"] >= 0,
    )


def _ticket_rows(tickets: pd.DataFrame, ids: Ids) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": ids("ticket", tickets["ticket_id"]),
            "person_id": tickets["person_id"],
            "tone": np.array(vocab.TICKET_TONES)[tickets["tone"].to_numpy()],
        }
    )
