"""A task that finds the DuckDB warehouse locked by another process waits for it (#18).

Airflow marks a task done before its process has exited and closed the file, and DuckDB
checkpoints on close: a bench day through Airflow failed its marts gate with "Could not
set lock on file" while the dbt task's process, already "success", was still closing the
warehouse. A connection waits a bounded time for the holder; a holder that keeps the file
gets a clear error instead of a stack trace.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from customer720 import warehouse
from customer720.settings import get_settings

# another process opens the warehouse, says so, and holds it for HOLD seconds
HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create or replace table held as select 1 as i")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_connection_waits_for_another_process_to_release_the_file(local_dir: Path) -> None:
    path = get_settings().warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = _hold(path, 2.0)
    try:
        started = time.monotonic()
        assert warehouse.scalar("select count(*) from held") == 1  # after the holder left
        assert time.monotonic() - started >= 1.0, "the file was not locked: nothing was tested"
    finally:
        holder.wait(timeout=30)


def test_a_holder_that_keeps_the_file_gets_a_clear_error(
    local_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warehouse, "LOCK_WAIT_SECONDS", 1.0)
    path = get_settings().warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = _hold(path, 10.0)
    try:
        with pytest.raises(
            warehouse.WarehouseUnavailable, match="stayed locked by another process"
        ):
            warehouse.scalar("select 1")
    finally:
        holder.kill()
        holder.wait(timeout=30)
