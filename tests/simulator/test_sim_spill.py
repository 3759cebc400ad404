"""Spilling the lifecycle tables to part files while simulating (state.spill) and
streaming them back in batches changes no byte of the outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ALL_DIRTY

from simulator import SimulationConfig, append, generate, state


def _digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _company(out: Path, mode: dict) -> dict[str, str]:
    generate(SimulationConfig(customers=300, days=30, seed=3, out=out, dirty=ALL_DIRTY, **mode))
    append(out, 2)
    return _digests(out)


@pytest.mark.parametrize("mode", [{"export": True}, {"text_ids": True}, {}])
def test_spilled_company_has_the_same_bytes(tmp_path, monkeypatch, mode):
    # Small batches in both runs, so tables span batches and parts span batch boundaries.
    monkeypatch.setattr(state, "BATCH_ROWS", 64)
    whole = _company(tmp_path / "whole", mode)
    spilled_parts: list[Path] = []
    spill = state.spill

    def counting_spill(company, out):
        spill(company, out)
        spilled_parts.extend(p for parts in company.parts.values() for p in parts)

    monkeypatch.setattr(state, "SPILL_ROWS", 150)
    monkeypatch.setattr(state, "spill", counting_spill)
    spilled = _company(tmp_path / "spilled", mode)
    assert any(state.SPILL_DIR.name in p.parts for p in spilled_parts)  # it did spill
    assert not (tmp_path / "spilled" / state.SPILL_DIR).exists()  # and cleaned up
    assert spilled == whole


def test_rechunked_tables_have_the_bytes_of_the_whole_table(tmp_path):
    # Pieces of odd sizes (as truth.py builds them, a slice of people at a time) across two
    # row groups: the file must not show where the pieces were cut.
    sizes = [700_000, 1, 0, 500_000]
    starts = np.cumsum([0, *sizes])
    pieces = [
        pa.table(
            {
                "n": np.arange(a, b),
                "text": pa.array(
                    [f"gid://shopify/Product/{i % 997}" for i in range(a, b)], pa.string()
                ),
            }
        )
        for a, b in zip(starts[:-1], starts[1:], strict=True)
    ]
    state.write_parquet_batches(state.rechunk(pieces), tmp_path / "pieces.parquet")
    state.write_parquet_batches(
        [pa.concat_tables(pieces).combine_chunks()], tmp_path / "whole.parquet"
    )
    assert pq.ParquetFile(tmp_path / "pieces.parquet").num_row_groups == 2
    assert (tmp_path / "pieces.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()


def test_rechunking_only_empty_tables_keeps_the_columns():
    empty = pa.table({"n": pa.array([], pa.int64())})
    assert [t.schema for t in state.rechunk([empty, empty])] == [empty.schema]
    assert list(state.rechunk([])) == []
