"""Export mode: the company as a real retail export shows it (issue #20).

- **text ids**: every id of every CRM table and of the web events is text in the forms real
  systems use — Salesforce-style (``0035g0000042AbCdEA``) and Stripe-style (``cus_2bRz8i3``)
  contacts side by side (as after a CRM migration), Shopify product GIDs
  (``gid://shopify/Product/17``), ``order_1f``-style ids for everything else. One mapping,
  :func:`text_id`, one-to-one per kind of record; the truth files use it too, so oracle
  figures still join.
- **no product categories**: ``products.category`` is empty.
- **returns as credit notes**: a returned order stays in the export as it was delivered (a
  purchase), and the refund is a separate order row, a credit note: status ``returned``,
  ``total_amount`` the negative of the order's, dated when the goods came back, no order
  lines (the contract has no negative lines) — what ``ingest/contract.json`` allows
  and ``dbt_project/macros/purchases.sql`` nets out.

The shorter history (270 days unless ``--days`` is given) is the command line's default.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from simulator.crm import Batches, mapped

EXPORT_DAYS = 270  # default history of an export-mode company: under a year

# The id columns of each CRM table, by the kind of record they name.
CRM_IDS: dict[str, dict[str, str]] = {
    "contacts": {"contact_id": "contact"},
    "products": {"product_id": "product"},
    "orders": {"order_id": "order", "contact_id": "contact"},
    "order_items": {"order_item_id": "line", "order_id": "order", "product_id": "product"},
    "tickets": {"ticket_id": "ticket", "contact_id": "contact", "order_id": "order"},
    "email_events": {"email_event_id": "email", "contact_id": "contact"},
    "survey_responses": {"survey_response_id": "survey", "contact_id": "contact"},
}
# The id fields of a web event, by kind.
EVENT_IDS: dict[str, str] = {
    "user_id": "contact",
    "email_contact_id": "contact",
    "product_id": "product",
    "order_id": "order",
}
CREDIT_NOTE = "credit_note"  # the kind of a credit note's order_id


def text_id(kind: str, n: int) -> str:
    """The text form of the simulator's integer id ``n`` (one-to-one per kind)."""
    if kind == "contact":
        # Salesforce-style for even ids, Stripe-style for odd ones
        return f"0035g{n:07d}AbCdEA" if n % 2 == 0 else f"cus_{n:x}Rz8i3"
    if kind == "product":
        return f"gid://shopify/Product/{n}"
    return f"{kind}_{n:x}"


def text_ids(kind: str, values: np.ndarray | pd.Series) -> np.ndarray:
    """:func:`text_id` of every value (an object array); missing or negative stays None."""
    ids = pd.Series(values).astype("Float64")
    known = ids.notna() & (ids >= 0)
    out = np.full(len(ids), None, dtype=object)
    if known.any():
        codes = ids[known].astype("int64").to_numpy()
        uniques, inverse = np.unique(codes, return_inverse=True)
        texts = np.array([text_id(kind, int(u)) for u in uniques], dtype=object)
        out[known.to_numpy()] = texts[inverse]
    return out


def purchases(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders as an export shows them: a returned order as it was delivered (a purchase).
    ``orders`` is the CRM view (integer ids); its refunds are :func:`credit_notes`."""
    returned = orders["status"].to_numpy() == "returned"
    kept = orders.assign(credit_note_of=pd.NA)
    if not returned.any():
        return kept
    was = kept.loc[returned]
    # before the return the order was delivered; its last change was then the delivery
    kept.loc[returned, "status"] = "delivered"
    kept.loc[returned, "updated_at"] = was["delivered_at"].where(
        was["delivered_at"].notna(), was["ordered_at"]
    )
    return kept


def credit_notes(orders: pd.DataFrame) -> pd.DataFrame:
    """A credit note for each returned order of the CRM view ``orders``: status
    ``returned``, ``order_id`` = the order's own number, of kind :data:`CREDIT_NOTE`, in
    column ``credit_note_of`` (the text ids are applied afterwards by :func:`to_text_ids`)."""
    was = orders.loc[orders["status"].to_numpy() == "returned"]
    return pd.DataFrame(
        {
            "order_id": was["order_id"].to_numpy(),
            "contact_id": was["contact_id"].to_numpy(),
            "ordered_at": was["updated_at"].to_numpy(),  # the return: the order's last change
            "status": "returned",
            "channel": was["channel"].to_numpy(),
            "total_amount": -was["total_amount"].to_numpy(),
            "delivered_at": None,
            "promised_at": None,
            "updated_at": was["updated_at"].to_numpy(),
            "credit_note_of": True,
        }
    )


def text_view(table: str, view: pd.DataFrame) -> pd.DataFrame:
    """Every id column of a CRM view as :func:`text_id` text (credit notes by their kind)."""
    out = view.copy()
    for column, kind in CRM_IDS.get(table, {}).items():
        out[column] = text_ids(kind, out[column].to_numpy())
    if "credit_note_of" in out:
        note = out.pop("credit_note_of").notna().to_numpy()
        out.loc[note, "order_id"] = text_ids(CREDIT_NOTE, view["order_id"].to_numpy()[note])
    return out


def to_text_ids(views: dict[str, list[Batches]]) -> dict[str, list[Batches]]:
    """The CRM views (batches) with :func:`text_view` applied to each batch."""
    return {
        table: [mapped(segment, partial(text_view, table)) for segment in segments]
        for table, segments in views.items()
    }


def export_views(views: dict[str, list[Batches]]) -> dict[str, list[Batches]]:
    """The CRM views of a company in export mode: credit notes, no categories, text ids.
    The credit notes follow all orders (a pass of their own), as a refund follows its sale."""
    views = dict(views)
    orders = views["orders"]
    views["orders"] = [mapped(s, purchases) for s in orders] + [
        mapped(s, credit_notes) for s in orders
    ]
    views["products"] = [mapped(s, lambda p: p.assign(category=None)) for s in views["products"]]
    return to_text_ids(views)
