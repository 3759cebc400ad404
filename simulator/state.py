"""Save and load the company between runs, so ``append`` continues where the last run ended.

The state lives in ``<out>/truth/_state/`` (the pipeline never reads truth/): latent
person state, devices and cookies as ``.npz``, lifecycle tables as Parquet.

The lifecycle tables only grow, so while simulating they do not stay in memory: every
:data:`SPILL_ROWS` buffered rows go to Parquet part files in ``_state/spill/`` (removed
when the run ends), and everything that reads a table streams it in batches
(:func:`frames`, :func:`arrow_batches`): memory is the population plus one buffer, not
the whole history.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.behaviour import Company

log = logging.getLogger(__name__)

STATE_DIR = Path("truth") / "_state"
SPILL_DIR = STATE_DIR / "spill"
# Buffered lifecycle rows before they are spilled to part files: a few hundred MB at most.
SPILL_ROWS = 4_000_000
# Rows per streamed batch: pyarrow's default row group, so a table written batch by batch
# has the same bytes as one written whole.
BATCH_ROWS = 1024 * 1024
# Tables rewritten in place every day (commerce._apply_scheduled): never spilled.
RESIDENT = frozenset({"scheduled"})


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """Arrow without pandas metadata, so equal data gives equal bytes."""
    return pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    write_parquet_batches([to_arrow(df)], path)


def write_parquet_batches(tables: Iterable[pa.Table], path: Path) -> int:
    """Write ``tables`` (same columns) as one Parquet file and return its rows; no file
    when there are none. Written beside ``path`` first: it may be one of the inputs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    writer: pq.ParquetWriter | None = None
    schema = None
    rows = 0
    try:
        for table in tables:
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(tmp, schema, compression="zstd")
            writer.write_table(table.cast(schema))
            rows += len(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        os.replace(tmp, path)
    return rows


# ------------------------------------------------------------------------- tables
def _rows(chunk: dict[str, np.ndarray]) -> int:
    return len(next(iter(chunk.values()), []))


def _buffer(company: Company, name: str) -> pa.Table | None:
    """The table's rows still in memory as one Arrow table (object columns are text)."""
    chunks = [c for c in company.tables[name] if _rows(c)]
    if not chunks:
        return None
    cols = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return pa.table(
        {
            k: pa.array(v, type=pa.large_string() if v.dtype == object else None)
            for k, v in cols.items()
        }
    )


def spill(company: Company, out: Path) -> None:
    """Move the growing tables' buffered rows to part files once they reach :data:`SPILL_ROWS`."""
    spillable = [name for name in company.tables if name not in RESIDENT]
    buffered = sum(_rows(c) for name in spillable for c in company.tables[name])
    if buffered < SPILL_ROWS:
        return
    for name in spillable:
        table = _buffer(company, name)
        company.tables[name] = []
        if table is None:
            continue
        parts = company.parts.setdefault(name, [])
        path = out / SPILL_DIR / name / f"part-{len(parts):05d}.parquet"
        write_parquet_batches([table], path)
        parts.append(path)
    log.debug("spilled %d rows on day %d", buffered, company.next_day)


def drop_spill(out: Path) -> None:
    shutil.rmtree(out / SPILL_DIR, ignore_errors=True)


def _pieces(company: Company, name: str, columns: list[str] | None) -> Iterator[pa.Table]:
    for path in company.parts.get(name, []):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns):
            yield pa.Table.from_batches([batch]).replace_schema_metadata(None)
    table = _buffer(company, name)
    if table is not None:
        yield table.select(columns) if columns else table


def rechunk(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """``tables`` (same columns) in order as tables of exactly :data:`BATCH_ROWS` rows (the
    last one fewer), one chunk each and typed as the first: written one by one, they give
    the bytes of the whole table written at once. Only empty tables give one empty table,
    so a file written from them still has its columns."""
    schema: pa.Schema | None = None
    pending: list[pa.Table] = []
    n = 0
    rows = 0
    for piece in tables:
        schema = schema or piece.schema  # parts of an older run may type text differently
        piece = piece.cast(schema)
        rows += len(piece)
        while len(piece):
            take = min(BATCH_ROWS - n, len(piece))
            pending.append(piece.slice(0, take))
            piece = piece.slice(take)
            n += take
            if n == BATCH_ROWS:
                yield pa.concat_tables(pending).combine_chunks()
                pending, n = [], 0
    if n:
        yield pa.concat_tables(pending).combine_chunks()
    elif not rows and schema is not None:
        yield schema.empty_table()


def arrow_batches(
    company: Company, name: str, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """The table in order, in tables of exactly :data:`BATCH_ROWS` rows (the last one fewer)."""
    return rechunk(_pieces(company, name, columns))


def frames(company: Company, name: str, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The table as DataFrames of :data:`BATCH_ROWS` rows, built from NumPy arrays like the
    simulator's own chunks (text as object arrays with None)."""
    for table in arrow_batches(company, name, columns):
        yield pd.DataFrame(
            {k: table.column(k).to_numpy(zero_copy_only=False) for k in table.column_names}
        )


# ------------------------------------------------------------------------- save / load
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
        path = d / f"{name}.parquet"
        if write_parquet_batches(arrow_batches(company, name), path):
            if name not in RESIDENT:  # the saved file now holds all of it
                company.tables[name], company.parts[name] = [], [path]
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
        if not path.exists():
            continue
        if name in RESIDENT:
            frame = pd.read_parquet(path)
            company.tables[name] = [{c: frame[c].to_numpy() for c in frame.columns}]
        else:  # read in batches when needed: the saved history is the first part
            company.parts[name] = [path]
    return company, meta
