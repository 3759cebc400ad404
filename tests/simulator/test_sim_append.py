from __future__ import annotations

import gzip
import hashlib
import json

import pandas as pd
from sim_helpers import crm_table

from simulator import SimulationConfig, append, generate


def _hashes(out):
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "events").rglob("*.gz"))
    }


def test_append_adds_only_new_days_and_continues_ids(tmp_path):
    out = tmp_path / "co"
    generate(SimulationConfig(customers=400, days=40, seed=5, out=out))
    before = _hashes(out)
    orders_before = crm_table(out, "orders")
    summary = append(out, 5)
    after = _hashes(out)
    assert {k: after[k] for k in before} == before  # old event files untouched
    new = sorted(set(after) - set(before))
    assert [k.split("/")[1] for k in new] == [f"date=2024-02-{d:02d}" for d in range(10, 15)]
    assert summary["days"] == 45 and summary["end"] == "2024-02-14"
    orders_after = crm_table(out, "orders")
    new_orders = orders_after[~orders_after["order_id"].isin(orders_before["order_id"])]
    assert len(new_orders) > 0
    assert new_orders["order_id"].min() == orders_before["order_id"].max() + 1
    assert (new_orders["ordered_at"] >= "2024-02-10").all()
    # Orders still on their way at the first end were delivered later: updated_at moved.
    merged = orders_before.merge(orders_after, on="order_id", suffixes=("_old", "_new"))
    changed = merged[merged["status_old"] != merged["status_new"]]
    assert len(changed) > 0 and (changed["updated_at_new"] > changed["updated_at_old"]).all()
    unchanged = merged[merged["status_old"] == merged["status_new"]]
    assert (unchanged["updated_at_new"] == unchanged["updated_at_old"]).all()
    assert json.loads((out / "simulation.json").read_text())["days"] == 45


def test_append_is_deterministic(tmp_path):
    # The population is drawn for the first run's horizon, so generate(30)+append(6) is its own
    # company, not generate(36); but it is reproducible: each day has its own random stream.
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        generate(SimulationConfig(customers=300, days=30, seed=9, out=out))
        append(out, 6)
    assert _hashes(a) == _hashes(b)
    assert crm_table(a, "orders").equals(crm_table(b, "orders"))


def _bad_json_lines(path) -> int:
    bad = 0
    with gzip.open(path, "rt") as lines:
        for line in lines:
            try:
                json.loads(line)
            except json.JSONDecodeError:
                bad += 1
    return bad


def test_append_with_dirty_makes_only_the_new_days_dirty(tmp_path):
    # A bad delivery: a clean company gets one day at a high rate, then clean days again.
    out = tmp_path / "co"
    generate(SimulationConfig(customers=300, days=20, seed=4, out=out))
    before = _hashes(out)
    append(out, 1, dirty={"malformed_json": 0.3})
    append(out, 1)
    day = lambda d: next((out / "events" / f"date={d}").glob("*.gz"))  # noqa: E731
    bad_day, clean_day = day("2024-01-21"), day("2024-01-22")
    with gzip.open(bad_day, "rt") as f:
        lines = sum(1 for _ in f)
    assert 0.2 < _bad_json_lines(bad_day) / lines < 0.4
    assert _bad_json_lines(clean_day) == 0
    assert {k: v for k, v in _hashes(out).items() if k in before} == before
    recorded = pd.read_parquet(out / "truth" / "dirty_events.parquet")
    assert set(recorded["date"]) == {"2024-01-21"}
    assert json.loads((out / "simulation.json").read_text())["dirty_modes"] == {}
