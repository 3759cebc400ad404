"""Warehouse access shared by both models (through ``customer720.warehouse``): the feature
table ``ml.customer_features``, table checks and portable SQL literals. The churn model's
order history is in :mod:`ml.churn.data`, the recommender's inputs in :mod:`ml.recs.data`.

SQL here is plain and portable (DuckDB and Postgres): ``date``/``timestamp`` literals and
``date - date`` (days).

Time convention (shared with the dbt model ``ml.customer_features``): a cutoff date D stands
for the instant ``cutoff_at`` = D 00:00:00. Data known at the cutoff is everything with a
timestamp <= cutoff_at; "after the cutoff" is > cutoff_at. So an order on day D itself (after
midnight) is not in D's features — it is the first day of D's label window.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

import pandas as pd

from customer720 import warehouse

log = logging.getLogger(__name__)

FEATURES_TABLE = ("ml", "customer_features")
KEY_COLUMNS = ("customer_key", "cutoff_date")


class MissingInputError(RuntimeError):
    """A table the ML stage needs is missing or empty; the message says what to run."""


def lit(day: dt.date) -> str:
    return f"date '{pd.Timestamp(day).date().isoformat()}'"


def ts(day: dt.date, plus_days: int = 0) -> str:
    """The instant ``day + plus_days`` at 00:00:00 as a portable timestamp literal."""
    moment = pd.Timestamp(day).normalize() + pd.Timedelta(days=plus_days)
    return f"timestamp '{moment:%Y-%m-%d %H:%M:%S}'"


def require_table(schema: str, table: str) -> None:
    if not warehouse.table_exists(schema, table):
        raise MissingInputError(
            f"{schema}.{table} is missing in the warehouse ({warehouse.get_settings().warehouse}). "
            "Build it first (dbt: `dbt build`), or point C720_WAREHOUSE at the right warehouse."
        )


def dates(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    for col in cols:
        if col in df:
            df[col] = pd.to_datetime(df[col]).dt.normalize()
    return df


def feature_cutoffs() -> list[pd.Timestamp]:
    """Distinct cutoff dates present in ``ml.customer_features``, oldest first."""
    require_table(*FEATURES_TABLE)
    df = warehouse.query_df("select distinct cutoff_date from ml.customer_features order by 1")
    return [pd.Timestamp(d).normalize() for d in df["cutoff_date"]]


def load_features(
    cutoffs: Iterable[dt.date] | None = None, customers: set[str] | None = None
) -> pd.DataFrame:
    """Rows of ``ml.customer_features`` (all cutoffs, or only the given ones; all customers,
    or only ``customers``, read one cutoff at a time so that memory holds one cutoff's
    rows beside the kept ones)."""
    require_table(*FEATURES_TABLE)
    sql = "select * from ml.customer_features"
    cutoffs = list(cutoffs) if cutoffs is not None else None
    if customers is not None and cutoffs is None:
        cutoffs = feature_cutoffs()
    if customers is not None and cutoffs:
        parts = []
        for cutoff in cutoffs:
            part = load_features([cutoff])
            parts.append(part[part["customer_key"].isin(customers)])
        return pd.concat(parts, ignore_index=True)
    if cutoffs is not None:
        if not cutoffs:
            return pd.DataFrame(columns=list(KEY_COLUMNS))
        sql += " where cutoff_date in (" + ", ".join(lit(c) for c in cutoffs) + ")"
    df = warehouse.query_df(sql + " order by cutoff_date, customer_key")
    df["customer_key"] = df["customer_key"].astype(str)
    return dates(df, "cutoff_date")


def newest_cutoff() -> dt.date | None:
    """The newest ``cutoff_date`` in ``ml.customer_features``; None if the table is missing
    or empty (for orchestration: which date the features were last built for)."""
    if not warehouse.table_exists(*FEATURES_TABLE):
        return None
    value = warehouse.scalar("select max(cutoff_date) from ml.customer_features")
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()
