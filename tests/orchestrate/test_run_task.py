"""The one place that tells Airflow which failures not to retry (dag_support.run_task)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from orchestrate import stages


def _stage(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def fail(as_of: date) -> dict:
        raise error

    monkeypatch.setitem(stages.STAGES, "boom", stages.Stage("boom", stages.INGEST, "boom", fail))


@pytest.mark.usefixtures("local_dir")
def test_data_errors_fail_without_retry_and_keep_their_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from ingest.errors import IngestError
    from orchestrate.dag_support import run_task
    from quality import QualityGateFailed

    for error in (QualityGateFailed("quality gate 'raw' failed: expect_x"), IngestError("bad")):
        _stage(monkeypatch, error)
        with pytest.raises(AirflowFailException, match=str(error)) as raised:
            run_task("boom", date(2024, 1, 30))
        assert raised.value.__cause__ is error


@pytest.mark.usefixtures("local_dir")
def test_other_errors_keep_their_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrate.dag_support import run_task

    _stage(monkeypatch, OSError("database is locked"))
    with pytest.raises(OSError, match="locked"):
        run_task("boom", date(2024, 1, 30))


# The dbt task as Airflow runs it, in a process of its own (dbt-duckdb keeps the warehouse
# open, and locked, in the process that built, until it ends: as an Airflow task's does).
LAYER_TASK = """
import json
from datetime import date
from orchestrate.dag_support import run_task
try:
    run_task("marts", date(2026, 3, 1))
    print(json.dumps({"type": None}))
except Exception as exc:
    out = {"type": type(exc).__name__, "cause": type(exc.__cause__).__name__, "message": str(exc)}
    print(json.dumps(out))
"""


def test_a_failed_dbt_model_fails_its_task_at_once_naming_it_and_its_rerun(
    local_dir: Path,
) -> None:
    """The transform DAG's dbt task (``dbt_marts``) on a warehouse whose raw tickets table
    is gone: the model fails, the task fails without retry (AirflowFailException) naming
    the model and the commands that re-run it, and the printed ``dbt retry`` command line
    finishes the build (the failed model and what was skipped) once the table is back."""
    import duckdb

    from customer720.settings import get_settings

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))
    from raw_fixture import create_raw

    warehouse = get_settings().warehouse
    local_dir.mkdir(parents=True)
    create_raw(warehouse)
    with duckdb.connect(warehouse) as con:
        con.execute("alter table raw.crm_tickets rename to crm_tickets_away")
    proc = subprocess.run(
        [sys.executable, "-c", LAYER_TASK], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (failed["type"], failed["cause"]) == ("AirflowFailException", "DbtNodeFailure"), failed
    message = failed["message"]
    assert "model stg_crm__tickets: error" in message, message
    assert "build --select stg_crm__tickets+ --exclude tag:needs_scores" in message, message
    assert "DBT_AS_OF=2026-03-01 " in message, message
    retry = next(line.strip() for line in message.splitlines() if " retry " in line)

    with duckdb.connect(warehouse) as con:
        con.execute("alter table raw.crm_tickets_away rename to crm_tickets")
    rerun = subprocess.run(retry, shell=True, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert "stg_crm__tickets" in rerun.stdout
    with duckdb.connect(warehouse, read_only=True) as con:
        assert con.execute("select count(*) from staging.stg_crm__tickets").fetchone()[0] > 0
        # ... and what the failure had skipped downstream of it
        assert con.execute("select count(*) from marts.fct_touchpoints").fetchone()[0] > 0
