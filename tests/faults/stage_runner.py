"""The daily writing stages for one date, announcing each stage, for the fault tests.

Like ``tests/activate/pipeline_stages.py`` (the registry's writing stages in run order,
dbt without its tests, no recommender training) but it prints ``@@ start <stage>`` and
``@@ done <stage>`` around every stage, unbuffered, and logs at INFO (plus the event
loader's per-batch DEBUG line), so a parent process can watch for a stage's own marker
and ``kill -9`` this process while that stage runs.

``--pause-at crm_insert``: a fault point for the one stage with no lasting marker (the CRM
writeback's transaction lasts milliseconds). Test code only, no production hook: a
SQLAlchemy event listener, after the first INSERT into the CRM scores table has executed
and before its transaction commits, prints ``@@ paused crm_insert`` and sleeps, so the
parent's ``kill -9`` lands inside the open transaction.

    python tests/faults/stage_runner.py --date 2024-02-29 [--pause-at crm_insert] [--until marts]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activate"))
from pipeline_stages import KEYS, NO_TESTS  # noqa: E402 - the same stage list and dbt flags

PAUSE_POINTS = ("crm_insert",)


def _announce(text: str) -> None:
    print(f"@@ {text}", flush=True)


def _pause_in_crm_insert() -> None:
    import sqlalchemy as sa

    from activate.writeback import SCORES_TABLE

    def after_execute(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.lstrip().lower().startswith(f"insert into {SCORES_TABLE}"):
            _announce("paused crm_insert")
            time.sleep(600)  # the parent kills us here, before the commit

    sa.event.listen(sa.Engine, "after_cursor_execute", after_execute)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--date", type=date.fromisoformat, required=True)
    parser.add_argument("--pause-at", choices=PAUSE_POINTS)
    parser.add_argument("--until", help="stop after this stage (e.g. marts: ingest + build)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
    logging.getLogger("ingest.events").setLevel(logging.DEBUG)  # a line per loaded batch
    for name in ("great_expectations", "sqlalchemy", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.pause_at == "crm_insert":
        _pause_in_crm_insert()

    from orchestrate.stages import run_stage, stages

    out: dict = {}
    for stage in stages(gates=False, skip=("train_recommender",)):
        kwargs = {"args": NO_TESTS} if stage.name in ("marts", "score_marts") else {}
        _announce(f"start {stage.name}")
        out[KEYS.get(stage.name, stage.name)] = run_stage(stage.name, args.date, **kwargs).summary
        _announce(f"done {stage.name}")
        if stage.name == args.until:
            break
    print(json.dumps(out, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
