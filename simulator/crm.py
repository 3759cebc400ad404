"""The CRM as of a date: lifecycle records -> the seven contract tables -> any SQL database.

The simulator keeps every record's full lifecycle (an order's placed/shipped/delivered/
returned times). The CRM shows each row as it looks on the last simulated day, with
``updated_at`` = the last change up to then, which is what incremental extraction reads.
"""

from __future__ import annotations

import io
import logging
import sqlite3
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pandas.api.types import is_numeric_dtype

from customer720.warehouse import sqlalchemy_url
from ingest.contract import contract
from simulator import vocab

log = logging.getLogger(__name__)

# The CRM tables the simulator writes: exactly the contract's, in its order.
TABLES = list(contract()["crm"]["tables"])
CRM_DIRTY_STREAMS = {
    "invalid_emails": 0xE1,
    "duplicate_crm_rows": 0xD1,
    "negative_quantities": 0x91,
}


def _ts(sec: np.ndarray, end_sec: int) -> np.ndarray:
    """ISO text 'YYYY-MM-DD HH:MM:SS'; None where unknown (-1) or after the as-of time."""
    sec = np.asarray(sec, dtype=np.int64)
    mask = (sec < 0) | (sec > end_sec)
    out = pc.strftime(
        pa.array(np.where(mask, 0, sec).astype("datetime64[s]")), format="%Y-%m-%d %H:%M:%S"
    )
    return np.asarray(
        pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), out).to_numpy(
            zero_copy_only=False
        ),
        dtype=object,
    )


def _last_change(end_sec: int, *secs: np.ndarray) -> np.ndarray:
    stacked = np.stack([np.where((s >= 0) & (s <= end_sec), s, -1) for s in secs])
    return stacked.max(axis=0)


class StableUniform:
    """A uniform number per id that does not change when later days are appended: the
    id-th draw of one random stream. Tables come in id order, so the draws are made in
    increasing blocks and only the current block is held, not one draw per id of a table
    of tens of millions of rows."""

    def __init__(self, seed: int, stream: int) -> None:
        self._rng = np.random.default_rng([seed, stream])
        self._first = 0  # the id of self._draws[0]
        self._draws = np.zeros(0)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros(0)
        lo, hi = int(ids.min()), int(ids.max()) + 1
        if lo < self._first:
            raise ValueError(f"ids must not go back: {lo} after {self._first}")
        end = self._first + len(self._draws)
        if lo >= end:  # skip the draws of ids never asked for, a block at a time
            while end < lo:
                end += len(self._rng.random(min(lo - end, 1 << 20)))
            self._draws = np.zeros(0)
        else:
            self._draws = self._draws[lo - self._first :]
        self._first = lo
        missing = hi - (lo + len(self._draws))
        if missing > 0:
            self._draws = np.concatenate([self._draws, self._rng.random(missing)])
        return self._draws[ids - lo]


def contacts_view(
    c: pd.DataFrame, end_sec: int, seed: int, dirty: dict[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    c = c[c["created_sec"] <= end_sec]
    cust = c["customer_sec"].to_numpy()
    ev = c["evangelist_sec"].to_numpy()
    unsub = c["unsubscribed_sec"].to_numpy()
    deleted = c["deleted_sec"].to_numpy()
    stage = c["stage0"].to_numpy().copy()
    known = lambda s: (s >= 0) & (s <= end_sec)  # noqa: E731
    stage[known(cust) & np.isin(stage, ["lead", "subscriber"])] = "customer"
    stage[known(ev) & (stage != "other")] = "evangelist"
    view = pd.DataFrame(
        {
            "contact_id": c["contact_id"].to_numpy(),
            "first_name": c["first_name"].to_numpy(),
            "last_name": c["last_name"].to_numpy(),
            "email": c["email"].to_numpy().copy(),
            "phone": c["phone"].to_numpy(),
            "country": c["country"].to_numpy(),
            "lifecycle_stage": stage,
            "marketing_consent": c["consent0"].to_numpy() & ~known(unsub),
            "owner": c["owner"].to_numpy(),
            "created_at": _ts(c["created_sec"].to_numpy(), end_sec),
            "updated_at": _ts(
                _last_change(end_sec, c["created_sec"].to_numpy(), cust, ev, unsub, deleted),
                end_sec,
            ),
            "is_deleted": known(deleted),
        }
    )
    bad = []
    if dirty.get("invalid_emails"):
        u = StableUniform(seed, CRM_DIRTY_STREAMS["invalid_emails"])(view["contact_id"].to_numpy())
        sel = np.flatnonzero(u < dirty["invalid_emails"])
        pattern = np.array(vocab.INVALID_EMAIL_PATTERNS)[
            (u[sel] * 1e6).astype(int) % len(vocab.INVALID_EMAIL_PATTERNS)
        ]
        emails = view["email"].to_numpy()
        user = [e.strip().split("@")[0] for e in emails[sel]]
        emails[sel] = [p.format(u=us, d="example.com") for p, us in zip(pattern, user, strict=True)]
        view["email"] = emails
        bad.append(bad_rows("contacts", "invalid_emails", view["contact_id"].to_numpy()[sel]))
    return view, concat_bad(bad)


def orders_view(o: pd.DataFrame, end_sec: int) -> pd.DataFrame:
    o = o[o["ordered_sec"] <= end_sec]
    known = lambda s: (s >= 0) & (s <= end_sec)  # noqa: E731
    ret, dlv, can, shp = (
        o[k].to_numpy() for k in ("returned_sec", "delivered_sec", "cancelled_sec", "shipped_sec")
    )
    status = np.select(
        [known(ret), known(dlv), known(can), known(shp)],
        ["returned", "delivered", "cancelled", "shipped"],
        "placed",
    )
    return pd.DataFrame(
        {
            "order_id": o["order_id"].to_numpy(),
            "contact_id": o["contact_id"].to_numpy(),
            "ordered_at": _ts(o["ordered_sec"].to_numpy(), end_sec),
            "status": status.astype(object),
            "channel": o["channel"].to_numpy(),
            "total_amount": o["total_amount"].to_numpy(),
            "delivered_at": _ts(dlv, end_sec),
            "promised_at": _ts(
                o["promised_sec"].to_numpy(), 2**62
            ),  # promised at checkout: known at once
            "updated_at": _ts(
                _last_change(end_sec, o["ordered_sec"].to_numpy(), ret, dlv, can, shp), end_sec
            ),
        }
    )


def _created_items(items: pd.DataFrame, end_sec: int) -> pd.DataFrame:
    return items[items["created_sec"] <= end_sec]


def _negative(items: pd.DataFrame, rate: float, uniform: StableUniform) -> np.ndarray:
    """Which order lines a broken export shows with a negative quantity."""
    if not rate:
        return np.zeros(len(items), bool)
    return uniform(items["order_item_id"].to_numpy()) < rate


def negative_quantities_uniform(seed: int) -> StableUniform:
    return StableUniform(seed, CRM_DIRTY_STREAMS["negative_quantities"])


def items_view(
    items: pd.DataFrame, end_sec: int, rate: float = 0.0, uniform: StableUniform | None = None
) -> pd.DataFrame:
    """Order lines as of ``end_sec``; ``rate``: the share shown with a negative quantity
    (``uniform`` from :func:`negative_quantities_uniform`, one per pass over the table)."""
    items = _created_items(items, end_sec)
    qty = items["quantity"].to_numpy().copy()
    if rate:
        sel = _negative(items, rate, uniform)
        qty[sel] = -qty[sel]
    return pd.DataFrame(
        {
            "order_item_id": items["order_item_id"].to_numpy(),
            "order_id": items["order_id"].to_numpy(),
            "product_id": items["product_id"].to_numpy(),
            "quantity": qty,
            "unit_price": items["unit_price"].to_numpy(),
            "updated_at": _ts(items["created_sec"].to_numpy(), end_sec),
        }
    )


def negative_items(
    items: pd.DataFrame, end_sec: int, rate: float, uniform: StableUniform
) -> pd.DataFrame:
    """The truth rows of the lines :func:`items_view` shows with a negative quantity."""
    items = _created_items(items, end_sec)
    return bad_rows(
        "order_items",
        "negative_quantities",
        items["order_item_id"].to_numpy()[_negative(items, rate, uniform)],
    )


def bad_rows(table: str, mode: str, ids: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"table": table, "mode": mode, "id": ids})


def tickets_view(t: pd.DataFrame, end_sec: int) -> pd.DataFrame:
    t = t[t["created_sec"] <= end_sec]
    known = lambda s: (s >= 0) & (s <= end_sec)  # noqa: E731
    pend, res, clo = (t[k].to_numpy() for k in ("pending_sec", "resolved_sec", "closed_sec"))
    status = np.select(
        [known(clo), known(res), known(pend)], ["closed", "solved", "pending"], "open"
    )
    subjects, bodies = [], []
    for tone, tpl, oid in zip(
        t["tone"].to_numpy(), t["template"].to_numpy(), t["order_id"].to_numpy(), strict=True
    ):
        subject, body = vocab.TICKET_TEMPLATES[vocab.TICKET_TONES[tone]][tpl]
        o = str(oid) if oid > 0 else "(no order)"
        subjects.append(subject.replace("{o}", o))
        bodies.append(body.replace("{o}", o))
    return pd.DataFrame(
        {
            "ticket_id": t["ticket_id"].to_numpy(),
            "contact_id": t["contact_id"].to_numpy(),
            "order_id": pd.Series(t["order_id"].to_numpy(), dtype="Int64")
            .where(t["order_id"].to_numpy() > 0)
            .array,
            "subject": subjects,
            "body": bodies,
            "status": status.astype(object),
            "priority": t["priority"].to_numpy(),
            "created_at": _ts(t["created_sec"].to_numpy(), end_sec),
            "resolved_at": _ts(res, end_sec),
            "updated_at": _ts(
                _last_change(end_sec, t["created_sec"].to_numpy(), pend, res, clo), end_sec
            ),
        }
    )


def products_view(p: pd.DataFrame, end_sec: int, start_sec: int) -> pd.DataFrame:
    # Discontinued products were last edited when they were taken off sale, before the window.
    changed = np.where(
        p["is_discontinued"].to_numpy(), start_sec - 86_400 * 7, p["created_sec"].to_numpy()
    )
    return pd.DataFrame(
        {
            "product_id": p["product_id"].to_numpy(),
            "name": p["name"].to_numpy(),
            "category": p["category"].to_numpy(),
            "brand": p["brand"].to_numpy(),
            "price": p["price"].to_numpy(),
            "is_discontinued": p["is_discontinued"].to_numpy(),
            "created_at": _ts(p["created_sec"].to_numpy(), end_sec),
            "updated_at": _ts(changed, end_sec),
        }
    )


def simple_view(df: pd.DataFrame, time_col: str, out_col: str, end_sec: int) -> pd.DataFrame:
    df = df[df[time_col] <= end_sec].copy()
    df[out_col] = _ts(df[time_col].to_numpy(), end_sec)
    df["updated_at"] = df[out_col]
    return df.drop(columns=[time_col])


DUPLICATED = {"contacts": "contact_id", "orders": "order_id"}  # table: its primary key


def duplicates_uniform(seed: int, table: str) -> StableUniform:
    return StableUniform(seed, CRM_DIRTY_STREAMS["duplicate_crm_rows"] + len(table))


def duplicates(view: pd.DataFrame, table: str, rate: float, uniform: StableUniform) -> pd.DataFrame:
    """A broken export: the rows of ``view`` (contacts or orders) that appear twice, same
    primary key (``uniform`` from :func:`duplicates_uniform`, one per pass)."""
    return view[uniform(view[DUPLICATED[table]].to_numpy()) < rate]


def concat_bad(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["table", "mode", "id"])
    )


# ------------------------------------------------------------------------- writing
_SQL_TYPES = {
    "sqlite": {
        "BIGINT": "BIGINT",
        "VARCHAR": "TEXT",
        "DOUBLE": "DOUBLE",
        "INTEGER": "INTEGER",
        "BOOLEAN": "BOOLEAN",
        "TIMESTAMP": "TIMESTAMP",
    },
    "postgresql": {
        "BIGINT": "BIGINT",
        "VARCHAR": "TEXT",
        "DOUBLE": "DOUBLE PRECISION",
        "INTEGER": "INTEGER",
        "BOOLEAN": "BOOLEAN",
        "TIMESTAMP": "TIMESTAMP",
    },
}


def _ddl(table: str, spec: dict, dialect: str, with_pk: bool) -> str:
    cols = [
        f'"{name}" {_SQL_TYPES[dialect][col["type"]]}{" NOT NULL" if col.get("required") else ""}'
        for name, col in spec["columns"].items()
    ]
    if with_pk:
        cols.append(f'PRIMARY KEY ("{spec["primary_key"]}")')
    return f'CREATE TABLE "{table}" (\n  ' + ",\n  ".join(cols) + "\n)"


SLICE_ROWS = 250_000  # rows converted and written at a time

# A table as DataFrame batches; called again for another pass (the tables are streamed
# from the simulator's part files, never whole: tens of millions of rows at 1M customers).
Batches = Callable[[], Iterable[pd.DataFrame]]


def one_batch(df: pd.DataFrame) -> Batches:
    return lambda: [df]


def mapped(batches: Batches, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Batches:
    return lambda: (fn(b) for b in batches())


def write_tables(url: str, views: dict[str, list[Batches]], keyless: set[str]) -> dict[str, int]:
    """Replace the CRM tables at ``url`` with ``views`` (each its segments' batches, in
    order) in one transaction; return the rows written per table."""
    spec = contract()["crm"]["tables"]
    engine = sa.create_engine(sqlalchemy_url(url))
    dialect = engine.dialect.name
    if dialect not in _SQL_TYPES:
        raise ValueError(
            f"CRM URL {url!r}: dialect {dialect!r} is not supported; use sqlite:/// or postgresql+psycopg2://"
        )
    rows: dict[str, int] = {}
    try:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for table in TABLES:
                cols = list(spec[table]["columns"])
                cur.execute(f'DROP TABLE IF EXISTS "{table}"')
                cur.execute(_ddl(table, spec[table], dialect, with_pk=table not in keyless))
                rows[table] = 0
                for segment in views[table]:
                    for batch in segment():
                        df = batch[cols]
                        # In slices: ids as text and Python rows of a whole batch would
                        # hold far more memory than its arrays.
                        for lo in range(0, len(df), SLICE_ROWS):
                            part = _text_ids(df.iloc[lo : lo + SLICE_ROWS], spec[table])
                            if dialect == "sqlite":
                                _insert_sqlite(cur, table, part, spec[table])
                            else:
                                _copy_postgres(cur, table, part)
                        rows[table] += len(df)
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()
    return rows


def _text_ids(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Id columns as the contract types them, text: the simulator's integer ids as their
    decimal text ('123', never '123.0' from a column with gaps)."""
    out = df.copy()
    for name, col in spec["columns"].items():
        if name.endswith("_id") and col["type"] == "VARCHAR" and is_numeric_dtype(df[name]):
            text = df[name].astype("Int64").astype("string")
            out[name] = text.astype(object).where(text.notna(), None)
    return out


def _python_rows(df: pd.DataFrame, spec: dict) -> list[tuple]:
    cols = []
    for name, col in spec["columns"].items():
        values = df[name]
        if col["type"] == "BOOLEAN":
            cols.append(values.astype(int).tolist())  # SQLite stores booleans as 0/1
        elif col["type"] in ("BIGINT", "INTEGER"):
            if values.isna().any():
                cols.append([None if pd.isna(v) else int(v) for v in values.tolist()])
            else:
                cols.append(values.astype(np.int64).tolist())
        else:
            cols.append(values.tolist())
    return list(zip(*cols, strict=True))


def _insert_sqlite(cur: sqlite3.Cursor, table: str, df: pd.DataFrame, spec: dict) -> None:
    marks = ",".join("?" * len(df.columns))
    cur.executemany(f'INSERT INTO "{table}" VALUES ({marks})', _python_rows(df, spec))


def _copy_postgres(cur, table: str, df: pd.DataFrame) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, header=False, na_rep="\\N")
    buf.seek(0)
    cols = ",".join(f'"{c}"' for c in df.columns)
    cur.copy_expert(f"COPY \"{table}\" ({cols}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buf)
