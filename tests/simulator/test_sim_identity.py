from __future__ import annotations

import json
from pathlib import Path

from sim_helpers import crm_table, read_events, truth


def test_contract_columns(small):
    contract = json.loads((Path(__file__).parents[2] / "ingest" / "contract.json").read_text())
    for table, spec in contract["crm"]["tables"].items():
        assert list(crm_table(small, table).columns) == list(spec["columns"]), table
    events = read_events(small)
    assert set(events.columns) <= set(contract["events"]["columns"])
    assert set(events["event_type"]) <= set(contract["events"]["columns"]["event_type"]["values"])
    assert events["event_id"].is_unique
    assert events["collector_timestamp"].notna().all()


def test_timestamps_are_iso_text_in_sqlite(small):
    orders = crm_table(small, "orders")
    assert orders["ordered_at"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    contacts = crm_table(small, "contacts")
    assert set(contacts["is_deleted"].unique()) <= {0, 1}
    assert 0.6 < contacts["marketing_consent"].mean() < 0.8


def test_share_of_persons_with_several_anonymous_ids(medium):
    ids = truth(medium, "anonymous_persons").groupby("person_id").size()
    share = (ids >= 2).mean()
    assert 0.3 <= share <= 0.5, share


def test_some_anonymous_ids_never_log_in(small):
    events = read_events(small)
    logged = events.groupby("anonymous_id")["user_id"].apply(lambda s: s.notna().any())
    assert (~logged).sum() > 0.2 * len(logged)
    assert logged.sum() > 0


def test_duplicate_contacts_share_an_email_up_to_case_and_space(small):
    contacts = crm_table(small, "contacts")
    norm = contacts["email"].str.strip().str.lower()
    dup_share = norm.duplicated().sum() / contacts["contact_id"].nunique()
    assert 0.01 < dup_share < 0.06
    cp = truth(small, "contact_persons")
    assert cp.groupby("person_id").size().max() == 2


def test_web_purchases_join_crm_orders(small):
    events = read_events(small)
    orders = crm_table(small, "orders").set_index("order_id")
    purchases = events[events["event_type"] == "purchase"]
    assert len(purchases) > 0
    ids = purchases["order_id"].astype("int64").unique()
    assert set(ids) <= set(orders.index)
    assert set(orders.loc[ids, "channel"]) <= {"web", "app"}
    web_orders = orders[orders["channel"].isin(["web", "app"])].index
    assert set(web_orders) <= set(ids)  # every web/app order was a tracked purchase
    clicks = events[events["event_type"] == "email_click"]
    assert clicks["email_contact_id"].notna().all() and (clicks["utm_medium"] == "email").all()


def test_crm_leads_without_web_and_visitors_without_crm(small):
    persons = truth(small, "persons")
    web = set(truth(small, "anonymous_persons")["person_id"])
    crm_only = persons[persons["has_contact"] & ~persons["person_id"].isin(web)]
    visitors = persons[~persons["has_contact"] & persons["person_id"].isin(web)]
    assert len(crm_only) > 0 and len(visitors) > 0


def test_ticket_text_follows_the_experience(small):
    tickets = crm_table(small, "tickets").merge(truth(small, "ticket_tones"), on="ticket_id")
    negative = tickets[tickets["tone"].isin(["late", "return", "complaint"])]
    praise = tickets[tickets["tone"] == "praise"]
    neg_words = r"disappointed|frustrat|unacceptable|terrible|angry|poor|awful|annoyed|rude|broken|damaged|cheap"
    assert negative["body"].str.contains(neg_words, case=False).all()
    assert praise["body"].str.contains(r"great|excellent|wonderful|love|happy", case=False).all()


def test_updated_at_moves_with_status(small):
    orders = crm_table(small, "orders")
    delivered = orders[orders["status"] == "delivered"]
    assert (delivered["updated_at"] == delivered["delivered_at"]).all()
    late = orders[orders["delivered_at"].notna() & (orders["delivered_at"] > orders["promised_at"])]
    assert 0.03 < len(late) / len(orders) < 0.2
    assert (orders["updated_at"] >= orders["ordered_at"]).all()
