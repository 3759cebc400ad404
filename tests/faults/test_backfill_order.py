"""Issue #19, item 4: D + 1 then D, through the stages, as a user's backfill would run them.

A small company is run for D, then D + 1, then D again (a backfill of a past date). After
every run the published snapshot's ``meta.publish_manifest.as_of_date`` is the newest date
run so far (it never goes backwards) and, in the snapshot, ``dim_customer_720`` is as of
the same date as the churn scores it carries. And the replay of D rebuilds what the first
run of D built: every table of the warehouse's ``marts`` and ``ml`` schemas (the marts, the
feature table, the score tables) holds the same rows, apart from run-time stamps and the
rows of later dates that history tables keep (the score history holds D + 1's scores too).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from faultkit import LAST, differences, run_date, save_state, simulate

D = LAST - timedelta(days=1)


def _snapshot_dates(published: Path) -> dict[str, list]:
    with duckdb.connect(str(published), read_only=True) as con:

        def dates(sql: str) -> list:
            return sorted({r[0] for r in con.execute(sql).fetchall()})

        return {
            "manifest": dates("select as_of_date from meta.publish_manifest"),
            "dim_customer_720": dates("select as_of_date from marts.dim_customer_720"),
            "dim_scores": dates(
                "select scores_as_of_date from marts.dim_customer_720 "
                "where scores_as_of_date is not null"
            ),
            "scores": dates("select as_of_date from marts.customer_churn_scores"),
            "recommendations": dates("select as_of_date from marts.customer_recommendations"),
        }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("backfill_order")
    local = root / "local"
    simulate(local, root / "simulate.log")
    out: dict = {"local": local, "snapshots": []}
    for n, day in enumerate((D, D + timedelta(days=1), D)):
        run_date(local, day, root / f"run{n}_{day}.log")
        out["snapshots"].append((day, _snapshot_dates(local / "published.duckdb")))
        if n == 0:
            out["first"] = save_state(local, root / "first_run")
    return out


def test_published_date_never_goes_back_and_the_view_matches_its_scores(runs: dict) -> None:
    newest: date | None = None
    for day, snap in runs["snapshots"]:
        newest = max(day, newest or day)
        assert snap["manifest"] == [newest], (day, snap)
        assert snap["dim_customer_720"] == [newest], (day, snap)
        assert snap["scores"] == [newest], (day, snap)
        assert snap["dim_scores"] == [newest], (day, snap)
        assert snap["recommendations"] == [newest], (day, snap)


def test_a_replay_of_d_rebuilds_the_first_run_of_d(runs: dict) -> None:
    # The published snapshot and the CRM stay at D + 1 (the test above): the warehouse is
    # where the replay rebuilds D.
    assert differences(runs["first"], runs["local"], through=D, parts=("warehouse",)) == {}
