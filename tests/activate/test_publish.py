"""Publishing: only the marts, a manifest that proves one whole version, Parquet exports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pandas as pd

from activate.__main__ import main
from activate.publish import check_snapshot, publish
from customer720 import warehouse
from customer720.settings import get_settings


def _marts(n: int, revision: str = "a") -> None:
    keys = [f"k{i}" for i in range(n)]
    warehouse.replace_rows(
        pd.DataFrame({"customer_key": keys, "persona": [revision] * n}), "marts", "dim_customer_720"
    )
    warehouse.replace_rows(
        pd.DataFrame({"customer_key": keys, "churn_probability": [0.1] * n}),
        "marts",
        "customer_churn_scores",
    )


def test_publish_copies_only_the_marts_with_a_manifest(cli_env: Path) -> None:
    _marts(3)
    warehouse.replace_rows(pd.DataFrame({"email": ["a@x.com"]}), "raw", "crm_contacts")
    result = publish()
    assert result["tables"] == {"marts.customer_churn_scores": 3, "marts.dim_customer_720": 3}
    published = get_settings().published
    with duckdb.connect(str(published), read_only=True) as con:
        schemas = {
            r[0]
            for r in con.execute(
                "select distinct table_schema from information_schema.tables"
            ).fetchall()
        }
        ids = con.execute("select distinct publish_id from meta.publish_manifest").fetchall()
    assert schemas == {"marts", "meta"}  # no raw, no staging: no personal data
    assert ids == [(result["publish_id"],)]
    check = check_snapshot(published)
    assert check.ok and check.publish_id == result["publish_id"]
    assert main(["check-published"]) == 0


def test_a_snapshot_mixing_two_publishes_is_detected(cli_env: Path, tmp_path: Path) -> None:
    published = get_settings().published
    _marts(3)
    publish()
    old = tmp_path / "old.duckdb"
    shutil.copy(published, old)
    # Same row counts, other content: only the fingerprint tells the versions apart.
    _marts(3, revision="b")
    publish()
    assert check_snapshot(published).ok
    mixed = tmp_path / "mixed.duckdb"
    shutil.copy(published, mixed)
    with duckdb.connect(str(mixed)) as con:
        con.execute(f"attach '{old}' as old (read_only)")
        con.execute("delete from marts.dim_customer_720")
        con.execute("insert into marts.dim_customer_720 select * from old.marts.dim_customer_720")
    check = check_snapshot(mixed)
    assert not check.ok
    assert any("marts.dim_customer_720" in p for p in check.problems)
    # A table missing from the snapshot, or an extra one, is a mix too.
    with duckdb.connect(str(mixed)) as con:
        con.execute("drop table marts.customer_churn_scores")
        con.execute("create table marts.stray as select 1 as x")
    problems = check_snapshot(mixed).problems
    assert any("customer_churn_scores is only in the manifest" in p for p in problems)
    assert any("stray is only in the snapshot" in p for p in problems)
    os.replace(mixed, published)
    assert main(["check-published"]) == 1


def test_parquet_export_swaps_a_current_link(local_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    ids = []
    for n in (2, 3, 4):
        _marts(n)
        ids.append(publish(parquet_dir=out)["publish_id"])
    current = out / "current"
    assert current.is_symlink() and current.resolve().name == ids[-1]
    with duckdb.connect() as con:
        rows = con.execute(
            f"select count(*) from '{current}/marts.dim_customer_720.parquet'"
        ).fetchall()
    assert rows == [(4,)]
    # The previous version stays for readers still on it; older ones go.
    assert sorted(p.name for p in out.iterdir() if not p.is_symlink()) == sorted(ids[1:])


def test_a_rerun_of_an_older_date_never_makes_the_snapshot_older(cli_env: Path) -> None:
    """D+1 published, then D re-run: readers keep D+1 whole; the same date again publishes."""
    from datetime import date

    from activate.publish import published_as_of

    day, next_day = date(2024, 6, 29), date(2024, 6, 30)
    _marts(3, revision="d+1")
    first = publish(as_of=next_day)
    _marts(3, revision="d")  # the warehouse rebuilt for the older date
    skipped = publish(as_of=day)
    assert "older than the published 2024-06-30" in skipped["skipped_reason"]
    check = check_snapshot(get_settings().published)
    assert check.ok and check.publish_id == first["publish_id"]
    assert published_as_of() == next_day
    with duckdb.connect(str(get_settings().published), read_only=True) as con:
        assert con.execute("select distinct persona from marts.dim_customer_720").fetchall() == [
            ("d+1",)
        ]
    _marts(3, revision="d+1 again")
    assert publish(as_of=next_day)["publish_id"] != first["publish_id"]
    assert published_as_of() == next_day


def _marts_equal_published() -> None:
    """Every mart in the snapshot holds exactly the warehouse's rows (a multiset compare)."""
    settings = get_settings()
    with duckdb.connect() as con:
        con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        con.execute(f"attach '{settings.published}' as pub (read_only)")
        tables = {
            r[0]
            for r in con.execute(
                "select table_catalog || '.' || table_name from information_schema.tables "
                "where table_schema = 'marts'"
            ).fetchall()
        }
        names = {t.split(".", 1)[1] for t in tables}
        assert {t for t in tables if t.startswith("wh.")} == {f"wh.{n}" for n in names}
        assert {t for t in tables if t.startswith("pub.")} == {f"pub.{n}" for n in names}
        for name in names:
            for a, b in (("wh", "pub"), ("pub", "wh")):
                extra = con.execute(
                    f"select count(*) from (select * from {a}.marts.{name} "
                    f"except all select * from {b}.marts.{name})"
                ).fetchall()
                assert extra == [(0,)], f"{name}: rows in {a} that are not in {b}"


def test_a_day_patches_the_last_snapshot_and_it_equals_the_warehouse(cli_env: Path) -> None:
    """The daily publish starts from the last snapshot: unchanged tables are kept, a few new
    or changed rows are patched in, a rebuilt table is copied, a dropped one goes."""
    n = 1000
    events = pd.DataFrame({"event_id": range(n), "customer_key": [f"k{i % 50}" for i in range(n)]})
    warehouse.replace_rows(events, "marts", "fct_events")
    _marts(50)
    warehouse.replace_rows(pd.DataFrame({"x": [1]}), "marts", "retired")
    assert "from_last_snapshot" not in publish()  # the first publish writes a fresh file

    # The next day: 10 new events and one changed, a rebuilt dim, nothing new in the scores.
    events.loc[3, "customer_key"] = "k49"
    events = pd.concat([events, pd.DataFrame({"event_id": range(n, n + 10), "customer_key": "k1"})])
    warehouse.replace_rows(events, "marts", "fct_events")
    _marts(50, revision="b")
    with warehouse.duckdb_connection() as con:
        con.execute("drop table marts.retired")
    result = publish()
    assert result["from_last_snapshot"] == {"kept": 1, "patched": 1, "copied": 1}
    assert result["tables"]["marts.fct_events"] == n + 10
    assert check_snapshot(get_settings().published).ok
    _marts_equal_published()

    # A repeated row cannot be patched by hash: the table is copied whole, still equal.
    with warehouse.duckdb_connection() as con:
        con.execute("insert into marts.fct_events select * from marts.fct_events limit 1")
    assert publish()["from_last_snapshot"]["copied"] == 1
    assert check_snapshot(get_settings().published).ok
    _marts_equal_published()


def test_a_snapshot_of_another_version_is_not_built_on(cli_env: Path) -> None:
    published = get_settings().published
    published.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(published)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.dim_customer_720 as select 'stale' as customer_key")
    _marts(3)
    result = publish()
    assert "from_last_snapshot" not in result
    assert check_snapshot(published).ok
    _marts_equal_published()
