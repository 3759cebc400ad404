"""The DAG files import cleanly and carry what operators rely on (Airflow DagBag)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from customer720.settings import PROJECT_ROOT

# Besides the dbt tasks: dbt_marts (transform) and dbt_score_marts (score).
EXPECTED_TASKS = {
    "customer720_ingest": {"extract_crm", "load_events", "check_raw"},
    "customer720_transform": {"check_marts"},
    "customer720_train": {"train_churn", "train_clv", "train_recommender"},
    "customer720_score": {
        "score_churn",
        "score_clv",
        "recommend",
        "check_scores",
        "publish",
        "sync_crm",
        "summarize",
    },
}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):
    # A fresh .local/ and Airflow home; dbt's manifest (dbt ls reads it).
    local = tmp_path_factory.mktemp("dags") / "local"
    # The settings end with this file (tests/conftest.py's guard restores them).
    os.environ["C720_LOCAL_DIR"] = str(local)
    os.environ["AIRFLOW_HOME"] = str(local / "airflow")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    from customer720.dbt import run_dbt

    run_dbt("parse")
    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def _dbt_ls(select: list[str], exclude: list[str]) -> set[str]:
    """The unique ids of the nodes dbt selects (``dbt ls``, the selection a build runs)."""
    from dbt.cli.main import dbtRunner

    from customer720.settings import get_settings

    project = str(get_settings().dbt_project_dir)
    cli = ["ls", "--project-dir", project, "--profiles-dir", project, "--quiet"]
    cli += ["--output", "json", "--output-keys", "unique_id"]
    cli += ["--select", *select] if select else []
    cli += ["--exclude", *exclude] if exclude else []
    result = dbtRunner().invoke(cli)
    assert result.success, result.exception
    return {json.loads(line)["unique_id"] for line in result.result}


def _names(ids: set[str]) -> set[str]:
    return {i.split(".")[-1] for i in ids}


def test_each_dbt_model_is_built_once_a_day_by_one_dbt_task(dagbag) -> None:
    """The transform DAG's dbt_marts builds the marts selector before the marts gate, the
    score DAG's dbt_score_marts the score marts after scoring: together every model, seed
    and snapshot of the project, none in both."""
    from customer720.dbt import selection

    transform, score = dagbag.dags["customer720_transform"], dagbag.dags["customer720_score"]
    assert {t for t in transform.task_ids if t.startswith("dbt_")} == {"dbt_marts"}
    assert {t for t in score.task_ids if t.startswith("dbt_")} == {"dbt_score_marts"}
    assert transform.get_task("dbt_marts").upstream_task_ids == set()
    assert transform.get_task("check_marts").upstream_task_ids == {"dbt_marts"}
    build = score.get_task("dbt_score_marts")
    assert {"score_churn", "score_clv", "recommend"} <= build.get_flat_relative_ids(upstream=True)
    assert "check_scores" in build.get_flat_relative_ids(upstream=False)

    marts, scores = _dbt_ls(*selection("marts")), _dbt_ls(*selection("score_marts"))
    built = {"model.", "seed.", "snapshot."}
    project = {n for n in _dbt_ls([], []) if n.startswith(tuple(built))}
    assert {n for n in marts | scores if n.startswith(tuple(built))} == project
    assert not {n for n in marts & scores if n.startswith(tuple(built))}
    assert {"stg_crm__contacts", "int_identity_nodes_resolved", "fct_orders"} <= _names(marts)
    assert {"sentiment_lexicon", "snap_crm__contacts", "customer_features"} <= _names(marts)
    assert {"dim_customer_720", "customer_churn_scores", "customer_recommendations"} <= _names(
        scores
    )
    # dbt's unit tests (fixed inputs) run in the test suite, not in the daily builds
    assert any(n.startswith("unit_test.") for n in _dbt_ls([], []))
    assert not any(n.startswith("unit_test.") for n in marts | scores)


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
