"""The DAG files import cleanly and carry what operators rely on (Airflow DagBag)."""

from __future__ import annotations

from pathlib import Path

import pytest

from customer720.settings import PROJECT_ROOT

EXPECTED_TASKS = {
    "customer720_ingest": {"extract_crm", "load_events", "check_raw"},
    "customer720_transform": {"build_marts", "check_marts"},
    "customer720_train": {"train_churn"},
    "customer720_score": {
        "score_churn",
        "recommend",
        "build_score_marts",
        "check_scores",
        "publish",
        "sync_crm",
        "summarize",
    },
}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_expected_dags_and_tasks(dagbag) -> None:
    assert set(EXPECTED_TASKS) <= set(dagbag.dags)
    for dag_id, tasks in EXPECTED_TASKS.items():
        assert set(dagbag.dags[dag_id].task_ids) == tasks


def test_every_dag_is_documented_owned_tagged_and_retried(dagbag) -> None:
    for dag_id in dagbag.dags:
        dag = dagbag.dags[dag_id]
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} needs a doc_md"
        assert dag.tags, f"{dag_id} needs tags"
        assert dag.catchup is False, f"{dag_id}: catchup must be off by default"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} needs an owner"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} needs retries"


def _outlets(dag) -> dict[str, str]:
    """asset name -> the task that updates it."""
    return {a.name: t.task_id for t in dag.tasks for a in getattr(t, "outlets", [])}


def test_dags_are_linked_by_assets_that_only_a_passed_gate_updates(dagbag) -> None:
    # transform starts on the raw gate's asset, score on the marts gate's asset: a failed
    # gate updates nothing, so nothing downstream starts for that date.
    ingest, transform, score = (
        dagbag.dags[f"customer720_{name}"] for name in ("ingest", "transform", "score")
    )
    assert _outlets(ingest) == {"customer720_raw_checked": "check_raw"}
    assert _outlets(transform) == {"customer720_marts_checked": "check_marts"}
    assert [a.name for a in transform.timetable.asset_condition.objects] == [
        "customer720_raw_checked"
    ]
    assert [a.name for a in score.timetable.asset_condition.objects] == [
        "customer720_marts_checked"
    ]


def test_publishing_comes_after_the_scores_gate(dagbag) -> None:
    dag = dagbag.dags["customer720_score"]
    assert "check_scores" in dag.get_task("publish").get_flat_relative_ids(upstream=True)
    assert _outlets(dag) == {"customer720_published_marts": "publish"}


def test_dag_files_do_no_work_at_import() -> None:
    # The scheduler parses DAG files often: heavy libraries are imported inside tasks.
    for path in Path(PROJECT_ROOT / "dags").glob("*.py"):
        head = path.read_text().split("@dag(")[0]
        for heavy in (
            "import pandas",
            "import duckdb",
            "import lightgbm",
            "great_expectations",
            "from dbt",
        ):
            assert heavy not in head, f"{path.name} imports {heavy} at module level"
