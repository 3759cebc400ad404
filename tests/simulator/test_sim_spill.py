"""Spilling the lifecycle tables to part files while simulating (state.spill) and
streaming them back in batches changes no byte of the outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
