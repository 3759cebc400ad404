"""Helpers for reading a simulated company in tests."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import pandas as pd


def read_lines(out: Path, max_days: int | None = None) -> list[tuple[str, str, str]]:
    """(date, file name, raw line) for every event line (of the first ``max_days`` folders)."""
    rows = []
    folders = sorted((out / "events").glob("date=*"))[:max_days]
    for path in sorted(p for folder in folders for p in folder.glob("*.json.gz")):
        day = path.parent.name.removeprefix("date=")
        for line in gzip.decompress(path.read_bytes()).decode().splitlines():
            rows.append((day, path.name, line))
    return rows


def read_events(out: Path, max_days: int | None = None) -> pd.DataFrame:
    """Every event as a frame (the dirt-free fixtures parse completely)."""
    return pd.DataFrame([json.loads(line) for _, _, line in read_lines(out, max_days)])


def crm_table(out: Path, table: str) -> pd.DataFrame:
    """A CRM table, its ids as the simulator's integers (the CRM stores them as text, the
    contract's type; the truth files keep the integers)."""
    with sqlite3.connect(out / "crm.sqlite") as con:
        df = pd.read_sql(f"select * from {table}", con)
    ids = [c for c in df.columns if c.endswith("_id") and c != "campaign_id"]
    return df.astype({c: "Int64" for c in ids}).astype(
        {c: "int64" for c in ids if df[c].notna().all()}
    )


def truth(out: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / "truth" / f"{name}.parquet")
