"""Save and load the company between runs, so ``append`` continues where the last run ended.

The state lives in ``<out>/truth/_state/`` (the pipeline never reads truth/): latent
person state, devices and cookies as ``.npz``, lifecycle tables as Parquet.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.behaviour import Company

STATE_DIR = Path("truth") / "_state"


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Parquet without pandas metadata, so equal data gives equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd")


# Columns of the tables a small or short company may have no rows in, so the CRM views
# and truth still find their columns (a 200-customer, 10-day company had no tickets).
EMPTY_COLUMNS = {
    "tickets": [
        "ticket_id",
        "contact_id",
        "person_id",
        "order_id",
        "tone",
        "template",
        "created_sec",
        "pending_sec",
        "resolved_sec",
        "closed_sec",
        "priority",
    ],
    "survey_responses": [
        "survey_response_id",
        "contact_id",
        "survey_type",
        "score",
        "comment",
        "responded_sec",
    ],
    "email_events": ["email_event_id", "contact_id", "campaign_id", "event_type", "occurred_sec"],
    "orders": [
        "order_id",
        "contact_id",
        "person_id",
        "ordered_sec",
        "channel",
        "total_amount",
        "promised_sec",
        "shipped_sec",
        "delivered_sec",
        "cancelled_sec",
        "returned_sec",
        "is_late",
    ],
    "order_items": [
        "order_item_id",
        "order_id",
        "product_id",
        "quantity",
        "unit_price",
        "created_sec",
    ],
}


def table_frame(company: Company, name: str) -> pd.DataFrame:
    chunks = [c for c in company.tables[name] if len(next(iter(c.values()), []))]
    if not chunks:
        return pd.DataFrame({c: np.array([], dtype=np.int64) for c in EMPTY_COLUMNS.get(name, [])})
    return pd.DataFrame({k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]})


def save(company: Company, out: Path, extra: dict) -> None:
    d = out / STATE_DIR
    d.mkdir(parents=True, exist_ok=True)
    arrays = {f"people__{k}": v for k, v in company.people.items()}
    arrays |= {f"devices__{k}": v for k, v in company.devices.items()}
    arrays |= {f"cookies__{k}": v for k, v in company.cookies.items()}
    with open(d / "company.npz", "wb") as fh:
        np.savez(fh, **arrays)
    meta = {
        **extra,
        "seed": company.seed,
        "start": company.start.isoformat(),
        "next_day": company.next_day,
        "counters": company.counters,
    }
    (d / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    write_parquet(company.contacts, d / "contacts.parquet")
    write_parquet(company.catalog, d / "catalog.parquet")
    for name in company.tables:
        frame = table_frame(company, name)
        path = d / f"{name}.parquet"
        if len(frame):
            write_parquet(frame, path)
        elif path.exists():
            path.unlink()


def load(out: Path) -> tuple[Company, dict]:
    d = out / STATE_DIR
    if not (d / "meta.json").exists():
        raise FileNotFoundError(
            f"no simulated company in {out} (missing {STATE_DIR}/meta.json); "
            "run `python -m simulator --out <dir>` first, then append to it"
        )
    meta = json.loads((d / "meta.json").read_text())
    with np.load(d / "company.npz", allow_pickle=False) as z:
        groups: dict[str, dict[str, np.ndarray]] = {"people": {}, "devices": {}, "cookies": {}}
        for key in z.files:
            group, name = key.split("__", 1)
            groups[group][name] = z[key]
    company = Company(
        seed=meta["seed"],
        start=date.fromisoformat(meta["start"]),
        next_day=meta["next_day"],
        people=groups["people"],
        contacts=pd.read_parquet(d / "contacts.parquet"),
        catalog=pd.read_parquet(d / "catalog.parquet"),
        devices=groups["devices"],
        cookies=groups["cookies"],
        counters=meta["counters"],
    )
    for name in company.tables:
        path = d / f"{name}.parquet"
        if path.exists():
            frame = pd.read_parquet(path)
            company.tables[name] = [{c: frame[c].to_numpy() for c in frame.columns}]
    return company, meta
