"""The benchmarked stages: each calls the function the Airflow DAG calls, nothing reimplemented.

Every stage takes one ``params`` dict (JSON: ``as_of`` as ISO text, scale facts) and
returns a small JSON-serialisable summary. They run in a child process each
(``bench.measure``), with ``C720_LOCAL_DIR`` pointing at the benchmark's scratch folder,
so every path comes from ``customer720.settings`` as in a real run.

The reference limits (``ref_*``) live in ``bench.reference``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

Params = dict[str, Any]
Stage = Callable[[Params], dict]


def _as_of(params: Params) -> date:
    return date.fromisoformat(params["as_of"])


def simulate(params: Params) -> dict:
    from customer720.settings import get_settings
    from simulator.__main__ import main

    out = get_settings().sources_dir
    args = ["--customers", str(params["customers"]), "--days", str(params["days"])]
    code = main([*args, "--seed", str(params.get("seed", 7)), "--out", str(out), "-q"])
    if code:
        raise RuntimeError(f"simulator exited with {code}")
    return {"out": str(out)}


def append_day(params: Params) -> dict:
    from customer720.settings import get_settings
    from simulator.__main__ import main

    code = main(["--append-days", "1", "--out", str(get_settings().sources_dir), "-q"])
    if code:
        raise RuntimeError(f"simulator --append-days exited with {code}")
    return {}


def ingest_crm(params: Params) -> dict:
    from ingest import extract_crm

    return extract_crm().as_dict()


def ingest_events(params: Params) -> dict:
    from ingest import load_events

    return load_events().as_dict()


def quality_raw(params: Params) -> dict:
    from quality import check_raw

    return check_raw(_as_of(params)).summary()


def dbt_build(params: Params) -> dict:
    """The DAG's ``build_marts`` (everything except the score marts)."""
    from customer720.dbt import run_dbt

    nodes = run_dbt("build", as_of=_as_of(params), exclude="tag:needs_scores")
    return {"nodes": len(nodes), "node_seconds": round(sum(n["seconds"] for n in nodes), 1)}


def quality_marts(params: Params) -> dict:
    from quality import check_marts

    return check_marts(_as_of(params)).summary()


def train_churn(params: Params) -> dict:
    from ml.pipeline import train_churn as run

    return run(_as_of(params))


def train_recommender(params: Params) -> dict:
    from ml.pipeline import train_recommender as run

    return run(_as_of(params))


def score_churn(params: Params) -> dict:
    from ml.pipeline import score_churn as run

    return run(_as_of(params))


def recommend(params: Params) -> dict:
    from ml.pipeline import recommend as run

    return run(_as_of(params))


def dbt_scores(params: Params) -> dict:
    """The DAG's ``build_score_marts``."""
    from customer720.dbt import run_dbt

    nodes = run_dbt("build", as_of=_as_of(params), select="tag:needs_scores")
    return {"nodes": len(nodes)}


def quality_scores(params: Params) -> dict:
    from quality.gates import check_scores

    return check_scores(_as_of(params)).summary()


def publish(params: Params) -> dict:
    from activate.publish import publish as run

    return run()


def writeback(params: Params) -> dict:
    from activate.writeback import sync_scores

    result = sync_scores(_as_of(params))
    return {k: v for k, v in result.__dict__.items() if k not in ("failures", "changes")}


def airflow_prepare(params: Params) -> dict:
    """Airflow's metadata DB and pool, made once before the timed run (as a deployment has)."""
    from customer720.orchestrate import prepare_airflow
    from customer720.settings import get_settings

    prepare_airflow(get_settings())
    return {}


def airflow(params: Params) -> dict:
    """The whole daily pipeline through Airflow, by its public entry point."""
    cmd = [sys.executable, "-m", "customer720.orchestrate", "run", "--date", params["as_of"]]
    log = Path(params["log_dir"]) / f"airflow-run-{params['as_of']}.log"
    with log.open("w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if code:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{' '.join(cmd[1:])} exited with {code} (log {log}):\n{tail}")
    return {"log": str(log)}


def _reference(name: str) -> Stage:
    def run(params: Params) -> dict:
        from bench import reference

        return getattr(reference, name)(params)

    run.__name__ = name
    return run


STAGES: dict[str, Stage] = {
    "simulate": simulate,
    "append_day": append_day,
    "ingest_crm": ingest_crm,
    "ingest_events": ingest_events,
    "quality_raw": quality_raw,
    "dbt_build": dbt_build,
    "quality_marts": quality_marts,
    "train_churn": train_churn,
    "train_recommender": train_recommender,
    "score_churn": score_churn,
    "recommend": recommend,
    "dbt_scores": dbt_scores,
    "quality_scores": quality_scores,
    "publish": publish,
    "writeback": writeback,
    "airflow_prepare": airflow_prepare,
    "airflow": airflow,
    "ref_read_json": _reference("bare_read_json"),
    "ref_sql_720": _reference("sql_720"),
    "ref_lightgbm": _reference("bare_lightgbm"),
}
