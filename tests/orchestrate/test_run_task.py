"""The one place that tells Airflow which failures not to retry (dag_support.run_task)."""

from __future__ import annotations

from datetime import date

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
