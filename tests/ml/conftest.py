"""Fixtures for the ML tests: an isolated .local dir and warehouse per test (or module)."""

from __future__ import annotations

import shutil
from pathlib import Path

import ml_synthetic
import pytest

_CACHE: dict[tuple, Path] = {}


def _point_at(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.setenv("C720_LOCAL_DIR", str(root))
    monkeypatch.setenv("C720_WAREHOUSE", str(root / "warehouse.duckdb"))
    monkeypatch.setenv("C720_MODEL_DIR", str(root / "models"))
    monkeypatch.setenv("C720_REPORTS_DIR", str(root / "reports"))
    monkeypatch.setenv("C720_ML_NUM_THREADS", "2")


@pytest.fixture
def local_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project state directory with the C720_* variables pointing into it."""
    _point_at(monkeypatch, tmp_path)
    return tmp_path


def _synthetic(tmp_path_factory, monkeypatch, tmp_path: Path, web: bool, n: int = 500) -> dict:
    """Copy a cached synthetic warehouse into tmp_path (built once per session)."""
    key = (web, n)
    if key not in _CACHE:
        root = tmp_path_factory.mktemp(f"synthetic_web{int(web)}")
        with pytest.MonkeyPatch.context() as mp:
            _point_at(mp, root)
            ml_synthetic.build(n_customers=n, web=web)
        _CACHE[key] = root
    _point_at(monkeypatch, tmp_path)
    shutil.copy(_CACHE[key] / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    return {"as_of": ml_synthetic.AS_OF, "root": tmp_path}


@pytest.fixture
def synthetic_wh(tmp_path_factory, monkeypatch, tmp_path) -> dict:
    """A fresh copy of the synthetic warehouse (with web data) for this test."""
    return _synthetic(tmp_path_factory, monkeypatch, tmp_path, web=True)


@pytest.fixture
def synthetic_wh_noweb(tmp_path_factory, monkeypatch, tmp_path) -> dict:
    """The synthetic warehouse with an empty marts.fct_product_interactions."""
    return _synthetic(tmp_path_factory, monkeypatch, tmp_path, web=False)
