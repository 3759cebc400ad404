"""The ML output tables' contract, read from its one owner: the dbt sources file
``dbt_project/models/marts/scores/_ml__sources.yml`` (source ``ml``: every column with its
``data_type``). The dbt macro ``create_ml_output_tables`` creates the tables from the same
declarations; the writers here put their frames in exactly those columns and order.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import pandas as pd
import yaml

from customer720 import warehouse
from customer720.settings import get_settings

SCHEMA = "ml"
SOURCES_FILE = ("models", "marts", "scores", "_ml__sources.yml")


@cache
def _contract() -> dict[str, dict[str, str]]:
    path = get_settings().dbt_project_dir.joinpath(*SOURCES_FILE)
    doc = yaml.safe_load(path.read_text())
    source = next(s for s in doc["sources"] if s["name"] == SCHEMA)
    return {
        t["name"]: {c["name"]: c["data_type"] for c in t.get("columns", [])}
        for t in source["tables"]
    }


def columns(table: str) -> dict[str, str]:
    """Column name → SQL type of ``ml.<table>``, in table order."""
    return dict(_contract()[table])


def conform(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """``frame`` in the contract's column order; a missing or extra column is an error."""
    cols = list(columns(table))
    if set(frame.columns) != set(cols):
        raise ValueError(
            f"ml.{table}: frame columns {sorted(frame.columns)} differ from the contract "
            f"{cols} (dbt_project/{'/'.join(SOURCES_FILE)})"
        )
    return frame[cols]


def write(frame: pd.DataFrame, table: str, as_of: dt.date) -> int:
    """Replace the ``as_of_date`` rows of ``ml.<table>`` with ``frame`` (idempotent per date)."""
    return warehouse.replace_rows(conform(frame, table), SCHEMA, table, where={"as_of_date": as_of})
