"""The app follows each publish: a swapped-in snapshot is read by the next request, a
request already reading keeps its version, and a missing snapshot says what to run."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from app import queries
from app.snapshot import Snapshot, SnapshotMissing


def _publish(path: Path, publish_id: str, stages: list[str]) -> None:
    """A minimal snapshot written beside ``path`` and renamed over it, as publish does."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute("create schema meta; create schema marts")
        con.execute(
            "create table meta.publish_manifest as select ? as publish_id, now() as published_at",
            [publish_id],
        )
        con.execute(
            """create table marts.dim_customer_720 (customer_key varchar, journey_stage varchar,
                churn_risk_band varchar, churn_probability double, total_revenue double,
                primary_contact_id bigint, owner varchar, persona varchar,
                churn_top_reasons varchar, order_count int, recency_days int,
                last_order_at timestamp, last_touchpoint_at timestamp,
                marketing_consent boolean, next_best_products varchar)"""
        )
        for i, stage in enumerate(stages):
            con.execute(
                "insert into marts.dim_customer_720 (customer_key, journey_stage,"
                " churn_risk_band, churn_probability, total_revenue) values (?, ?, 'high', ?, 10)",
                [f"{i:032x}", stage, 0.9 - i / 100],
            )
    os.replace(tmp, path)


def test_next_request_sees_the_new_publish_and_a_running_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "published.duckdb"
    _publish(path, "p1", ["repeat"])
    snapshot = Snapshot(path)
    with snapshot.cursor() as reading:
        assert reading.version.publish_id == "p1"
        _publish(path, "p2", ["repeat", "at_risk"])
        # still the first version for the request that opened it
        assert reading.value("select count(*) from marts.dim_customer_720") == 1
        with snapshot.cursor() as later:
            assert later.version.publish_id == "p2"
            assert later.value("select count(*) from marts.dim_customer_720") == 2
    # and the snapshot is never locked by the app: the publisher could replace it again
    _publish(path, "p3", [])
    with snapshot.cursor() as r:
        assert r.version.publish_id == "p3"


def test_at_risk_list_holds_no_lapsed_customer(tmp_path: Path) -> None:
    path = tmp_path / "published.duckdb"
    _publish(path, "p1", ["lapsed", "at_risk", "repeat", "lapsed"])
    with Snapshot(path).cursor() as r:
        count, rows = queries.at_risk_active(r)
        lapsed_count, lapsed = queries.lapsed_win_back(r)
    assert count == 2 and {row["journey_stage"] for row in rows} == {"at_risk", "repeat"}
    assert lapsed_count == 2 and {row["journey_stage"] for row in lapsed} == {"lapsed"}


def test_the_query_the_run_summary_prints_lists_no_lapsed_customer(tmp_path: Path) -> None:
    from activate.summary import EXAMPLE_QUERY

    path = tmp_path / "published.duckdb"
    _publish(path, "p1", ["lapsed", "at_risk", "repeat", "lapsed"])
    with duckdb.connect(str(path), read_only=True) as con:
        stages = sorted(row[1] for row in con.execute(EXAMPLE_QUERY).fetchall())
    assert stages == ["at_risk", "repeat"]


def test_missing_snapshot_names_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(SnapshotMissing, match="make run"):
        Snapshot(tmp_path / "published.duckdb").version()
