"""The DAG files import cleanly and carry what operators rely on (Airflow DagBag)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from customer720.settings import PROJECT_ROOT

# Besides one Cosmos task per dbt model in the groups dbt_marts / dbt_score_marts.
EXPECTED_TASKS = {
    "customer720_ingest": {"extract_crm", "load_events", "check_raw"},
    "customer720_transform": {"run_date", "check_marts"},
    "customer720_train": {"train_churn", "train_recommender"},
    "customer720_score": {
        "run_date",
        "score_churn",
        "recommend",
        "check_scores",
        "publish",
        "sync_crm",
        "summarize",
    },
}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):
    # A fresh .local/ and Airflow home; the dbt manifest Cosmos draws the dbt groups from.
    local = tmp_path_factory.mktemp("dags") / "local"
    saved = dict(os.environ)
    for name in [k for k in os.environ if k.startswith(("C720_", "AIRFLOW", "DBT_"))]:
        del os.environ[name]
    os.environ["C720_LOCAL_DIR"] = str(local)
    os.environ["AIRFLOW_HOME"] = str(local / "airflow")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    try:
        from airflow.dag_processing.dagbag import DagBag

        from customer720.dbt import run_dbt

        run_dbt("parse")
        yield DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def _dbt_models(dag, group: str) -> set[str]:
    """The dbt models with a task of their own in ``group`` (Cosmos: ``<model>_model_build``)."""
    prefix, suffix = f"{group}.", "_model_build"
    return {
        t.removeprefix(prefix).removesuffix(suffix)
        for t in dag.task_ids
        if t.startswith(prefix) and t.endswith(suffix)
    }


def test_expected_dags_and_tasks(dagbag) -> None:
    assert set(EXPECTED_TASKS) == set(dagbag.dags)
    for dag_id, tasks in EXPECTED_TASKS.items():
        own = {t for t in dagbag.dags[dag_id].task_ids if not t.startswith("dbt_")}
        assert own == tasks


def test_every_dbt_model_is_a_task_in_exactly_one_group(dagbag) -> None:
    marts = _dbt_models(dagbag.dags["customer720_transform"], "dbt_marts")
    scores = _dbt_models(dagbag.dags["customer720_score"], "dbt_score_marts")
    assert {"stg_crm__contacts", "int_identity_nodes_resolved", "fct_orders"} <= marts
    assert "customer_features" in marts
    assert {"dim_customer_720", "customer_churn_scores", "customer_recommendations"} <= scores
    assert not marts & scores
    # The marts gate waits for every model of the group; scores are built after ML.
    gate = dagbag.dags["customer720_transform"].get_task("check_marts")
    group = {t for t in gate.dag.task_ids if t.startswith("dbt_marts.")}
    assert group <= gate.get_flat_relative_ids(upstream=True)
    score_dag = dagbag.dags["customer720_score"]
    first = score_dag.get_task("dbt_score_marts.customer_churn_scores_model_build")
    assert "score_churn" in first.get_flat_relative_ids(upstream=True)


def test_dbt_tasks_that_write_duckdb_queue_in_the_pool_of_one(dagbag) -> None:
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if task.task_id.startswith("dbt_"):
                assert task.pool == "warehouse_writer", task.task_id


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
