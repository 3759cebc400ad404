"""Issue #19, item 5: a kill -9 in any writing stage, then a re-run of the whole date, leaves
every user-facing table as an uninterrupted run of that date leaves it.

The starting state is built once: a small company (faultkit) whose day before D was run
through the stages while D's event files were not yet delivered; then D's files arrive.
Each case copies that state, runs D's stages in a child process, kills the child with
SIGKILL while the named stage runs (on an observable marker of the stage), re-runs D to
the end, and compares the published marts, the raw data tables, the warehouse's ML tables
and the CRM writeback table (run-time stamps left out, as bench/backfill_twice.py does)
with those of one uninterrupted run of D on another copy of the same starting state.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from faultkit import (
    LAST,
    copy_state,
    differences,
    kill_during,
    run_date,
    simulate,
    user_facing_tables,
)

D = LAST


def _line(text: str):
    return lambda out: text in out


def _published_tmp(local: Path):
    return lambda out: (local / "published.duckdb.tmp").exists()


# stage -> (its marker, given the case's folder; runner flags)
KILLS = {
    # the event loader's line after a batch is committed, before the run is recorded
    "ingest_events": (lambda local: _line("new files loaded"), ()),
    # dbt mid-build: staging, snapshot and the incremental models done, marts not yet
    "marts": (lambda local: _line("START sql table model intermediate.int_identity_nodes_"), ()),
    # the first model version registered, the champion not yet decided
    "train_churn": (lambda local: _line("registered churn model"), ()),
    # the new snapshot half-written next to the old one
    "publish": (_published_tmp, ()),
    # inside the CRM transaction, after the first INSERT, before COMMIT (runner's fault point)
    "crm_writeback": (lambda local: _line("@@ paused crm_insert"), ("--pause-at", "crm_insert")),
}


def _fresh_run(start: Path) -> Path:
    """A copy of the starting state at the one path every run uses (``run/``): raw rows
    keep their source's URL, and the CRM's holds the path, so all runs must share it."""
    run = start.parent / "run"
    shutil.rmtree(run, ignore_errors=True)
    return copy_state(start, run)


@pytest.fixture(scope="module")
def starting_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kill_rerun")
    local = root / "run"
    sources = simulate(local, root / "simulate.log")
    today = sources / "events" / f"date={D.isoformat()}"
    held = root / today.name
    shutil.move(today, held)  # D's files are delivered after the run of D - 1
    run_date(local, D - timedelta(days=1), root / "day_before.log")
    shutil.move(held, today)
    return local.rename(root / "start")


@pytest.fixture(scope="module")
def uninterrupted(starting_state: Path) -> dict:
    local = _fresh_run(starting_state)
    run_date(local, D, local.parent / "uninterrupted.log")
    return user_facing_tables(local)


@pytest.mark.parametrize("stage", list(KILLS))
def test_kill_in_a_stage_then_rerun_gives_the_uninterrupted_tables(
    stage: str, starting_state: Path, uninterrupted: dict
) -> None:
    local = _fresh_run(starting_state)
    marker, flags = KILLS[stage]
    kill_during(local, D, stage, marker(local), local.parent / f"{stage}_killed.log", *flags)
    run_date(local, D, local.parent / f"{stage}_rerun.log")
    after = user_facing_tables(local)
    # Every kind of table is there to compare (an empty comparison would prove nothing).
    for kind in ("published marts.", "raw.", "warehouse ml.", "crm "):
        assert any(name.startswith(kind) for name in after), (kind, sorted(after))
    assert differences(uninterrupted, after) == {}
