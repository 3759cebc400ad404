"""Small simulated companies shared by the simulator tests (each made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import SimulationConfig, generate

ALL_DIRTY = {
    "malformed_json": 0.02,
    "missing_ids": 0.02,
    "duplicate_event_ids": 0.02,
    "late_files": 0.02,
    "clock_skew": 0.02,
    "schema_drift": 0.03,
    "duplicate_crm_rows": 0.02,
    "invalid_emails": 0.03,
    "negative_quantities": 0.02,
}


@pytest.fixture(scope="session")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small")
    generate(SimulationConfig(customers=500, days=90, seed=7, out=out))
    return out


@pytest.fixture(scope="session")
def medium(tmp_path_factory) -> Path:
    """Big enough for the statistical checks (churn signal, lift, oracle)."""
    out = tmp_path_factory.mktemp("medium")
    generate(SimulationConfig(customers=3000, days=240, seed=11, out=out))
    return out


@pytest.fixture(scope="session")
def dirty(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dirty")
    generate(SimulationConfig(customers=500, days=60, seed=3, out=out, dirty=ALL_DIRTY))
    return out
