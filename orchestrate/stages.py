"""The one registry of the pipeline's stages, their order, and the shape of their results.

A stage is a function of the run's date (``run_stage(name, as_of, **kwargs)``) that returns
a ``StageResult``: stage, as_of, ok, seconds and a JSON-safe ``summary`` dict (NaN and
infinity become None: XComs and the run-summary parts are strict JSON). ``result.save()``
keeps the summary as the date's run-summary part (``customer720.runs``).

Who calls it: the DAG files (each task is one call), ``bench/stages.py`` (the timed
stages), ``tests/activate/pipeline_stages.py`` (the writing stages without Airflow). The
order is the order of ``STAGES``; the DAGs run it as ingest → transform → [train] → score
(``chain()``). Importing this module is cheap (no Airflow, no stage package): each stage
imports its package when it runs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from customer720.settings import Settings

INGEST, TRANSFORM, TRAIN, SCORE = "ingest", "transform", "train", "score"

# The libraries every task process starts with. Airflow's scheduler imports them before it
# forks its LocalExecutor workers (airflow_settings/airflow_local_settings.py), and each
# task process is forked from a worker, so a dbt task or a quality gate does not import
# them again (dbt 2-3 s, Great Expectations 3-4 s). ``bench.measure`` imports them before
# its timer for the same reason: a stage is timed as a task pays it.
PRELOADED_MODULES = ("dbt.cli.main", "great_expectations")


def preload() -> None:
    """Import ``PRELOADED_MODULES`` (what a forked task process already holds)."""
    import importlib

    import quality.gx_runner  # noqa: F401  first: it quietens GX's logging at import

    for name in PRELOADED_MODULES:
        importlib.import_module(name)


STEPS = (INGEST, TRANSFORM, TRAIN, SCORE)  # one DAG each: customer720_<step>


def dag_id(step: str) -> str:
    return f"customer720_{step}"


def chain(train: bool) -> list[str]:
    """The DAG ids a run walks for one date, in order (training only when asked)."""
    return [dag_id(step) for step in STEPS if train or step != TRAIN]


def json_safe(value: Any) -> Any:
    """NaN / infinity (a metric with nothing to evaluate) as None, in nested dicts and lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class StageResult:
    stage: str
    as_of: str  # ISO date
    # False when the stage reports no success: a failing stage raises, except the
    # non-blocking model monitoring gate, which reports its alerts and lets the run go on
    ok: bool
    seconds: float
    summary: dict[str, Any]
    part: str  # its name in the date's run summary

    def save(self, settings: Settings | None = None) -> dict[str, Any]:
        """Keep the summary as this date's run-summary part; return it (the task's XCom)."""
        from customer720.runs import save_part

        return save_part(date.fromisoformat(self.as_of), self.part, self.summary, settings)


@dataclass(frozen=True)
class Stage:
    name: str
    step: str  # the DAG it runs in
    part: str
    run: Callable[..., dict[str, Any]]  # (as_of, **kwargs) -> a plain summary dict
    gate: bool = False  # a quality gate: reads only, raises QualityGateFailed
    ml: bool = False  # trains or scores a model


# --- the stage functions: each calls its package's entry point, nothing reimplemented ---


def _ingest_crm(as_of: date) -> dict:
    from customer720.settings import get_settings
    from ingest import extract_crm
    from orchestrate.preflight import check_sources

    # The chain's first stage checks the sources first (as the launcher does): a scheduled
    # run with a misspelt CRM path fails here, naming it, and creates no file.
    sources = check_sources(get_settings())
    return {**extract_crm().as_dict(), "preflight": sources.as_dict()}


def _ingest_events(as_of: date) -> dict:
    from customer720.settings import get_settings
    from ingest import load_events

    if get_settings().no_events:
        return {"skipped": "C720_NO_EVENTS is set: this company has no web/app events"}
    return load_events().as_dict()


def _quality_raw(as_of: date, failed_loads: tuple[str, ...] | list[str] = ()) -> dict:
    from quality import check_raw

    return check_raw(as_of, failed_loads=failed_loads).as_dict()


def _dbt(selector: str, reads_raw: bool = False) -> Callable[..., dict]:
    def build(as_of: date, args: list[str] | None = None) -> dict:
        """One ``dbt build`` of the selector; its nodes counted by status.

        ``reads_raw``: the build holds the staging models. It pins the loads the date reads
        first (``ingest.crm_history``); in a re-run of a past date those are older than
        what the incremental models hold, so they are rebuilt from them."""
        from customer720.dbt import run_dbt

        pinned: dict[str, Any] = {}
        if reads_raw:
            from ingest.crm_history import pin_loads

            pin = pin_loads(as_of)
            pinned = {"loads_pin": pin.as_dict()}
            if pin.replay:
                args = [*(args or []), "--full-refresh"]
        nodes = run_dbt("build", as_of=as_of, selector=selector, args=args)
        statuses: dict[str, int] = {}
        for node in nodes:
            statuses[node["status"]] = statuses.get(node["status"], 0) + 1
        return {
            "nodes": len(nodes),
            "node_seconds": round(sum(n["seconds"] for n in nodes), 1),
            "statuses": statuses,
            **pinned,
        }

    build.__name__ = f"dbt_{selector}"
    return build


def _quality_marts(as_of: date) -> dict:
    from quality import check_marts

    return check_marts(as_of).as_dict()


def _ml(name: str) -> Callable[..., dict]:
    def run(as_of: date) -> dict:
        from ml import pipeline

        return getattr(pipeline, name)(as_of)

    run.__name__ = name
    return run


def _quality_scores(as_of: date) -> dict:
    from quality import check_scores

    return check_scores(as_of).as_dict()


def _quality_models(as_of: date) -> dict:
    """The model monitoring gate: alerts (orchestrate.callbacks.alert), never fails the run
    (why: quality.gates.check_models)."""
    from orchestrate.callbacks import alert
    from quality import check_models
    from quality.gates import drifted_features, monitoring_alert

    gate = check_models(as_of)
    message = monitoring_alert(gate)
    if message:
        alert(message)
    return gate.as_dict() | {"drifted_features": drifted_features(gate), "blocking": False}


def _publish(as_of: date) -> dict:
    from activate.publish import publish

    return publish(as_of=as_of)


def sync_as_dict(result: Any) -> dict[str, Any]:
    """A CRM writeback's counts: its lists (``failures``, a dry run's ``changes``) stay in
    the task log; ``failed`` counts the failures."""
    return {k: v for k, v in asdict(result).items() if k not in ("failures", "changes")}


def _crm_writeback(as_of: date) -> dict:
    from activate.writeback import sync_scores

    return sync_as_dict(sync_scores(as_of))


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage("ingest_crm", INGEST, "ingest_crm", _ingest_crm),
        Stage("ingest_events", INGEST, "ingest_events", _ingest_events),
        Stage("quality_raw", INGEST, "quality_raw", _quality_raw, gate=True),
        Stage("marts", TRANSFORM, "dbt", _dbt("marts", reads_raw=True)),
        Stage("quality_marts", TRANSFORM, "quality_marts", _quality_marts, gate=True),
        Stage("train_churn", TRAIN, "churn_model", _ml("train_churn"), ml=True),
        Stage("train_clv", TRAIN, "clv_model", _ml("train_clv"), ml=True),
        Stage("train_recommender", TRAIN, "recommender_model", _ml("train_recommender"), ml=True),
        Stage("score_churn", SCORE, "churn_scores", _ml("score_churn"), ml=True),
        Stage("score_clv", SCORE, "clv_scores", _ml("score_clv"), ml=True),
        Stage("recommend", SCORE, "recommendations", _ml("recommend"), ml=True),
        Stage("monitor_models", SCORE, "model_monitoring", _ml("monitor_models"), ml=True),
        Stage("score_marts", SCORE, "dbt_score_marts", _dbt("score_marts")),
        Stage("quality_scores", SCORE, "quality_scores", _quality_scores, gate=True),
        Stage("publish", SCORE, "publish", _publish),
        Stage("crm_writeback", SCORE, "crm_writeback", _crm_writeback),
        Stage("quality_models", SCORE, "quality_models", _quality_models, gate=True),
    )
}


def stages(*, gates: bool = True, ml: bool = True, skip: tuple[str, ...] = ()) -> list[Stage]:
    """The stages in run order; without the gates, the ML stages or the ones named."""
    return [
        s
        for s in STAGES.values()
        if (gates or not s.gate) and (ml or not s.ml) and s.name not in skip
    ]


def run_stage(name: str, as_of: date | str, **kwargs: Any) -> StageResult:
    """Run one stage for ``as_of``; a failing stage (or failed gate) raises."""
    stage = STAGES[name]
    day = as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of)[:10])
    started = time.monotonic()
    summary = json_safe(stage.run(day, **kwargs))
    return StageResult(
        stage=name,
        as_of=day.isoformat(),
        ok=summary.get("success", True) is not False,
        seconds=round(time.monotonic() - started, 2),
        summary=summary,
        part=stage.part,
    )
