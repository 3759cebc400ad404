"""The daily pipeline's writing stages in one process, without Airflow and the gates.

For the activate and fault tests: the registry's writing stages (orchestrate.stages, what
the DAG tasks call: ingest, dbt, the ML steps, publish, CRM sync), in run order, in a child
process of its own so the test process never holds the warehouse file. dbt builds without
its tests (they only read).

    python tests/activate/pipeline_stages.py --date 2024-05-29 [--no-ml] [--until marts]

For the kill tests (tests/faults/test_kill_and_rerun.py): ``--from STAGE`` starts there,
``--save-before DIR`` copies the run's state to DIR/<stage> before each stage
(``faultkit.save_state``), ``--kill-in STAGE`` SIGKILLs the process mid-way through that
stage (``tests/faults/killpoints.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

FAULTS = Path(__file__).resolve().parents[1] / "faults"

# The keys the activate tests read this script's JSON output by.
KEYS = {"ingest_crm": "crm", "ingest_events": "events", "crm_writeback": "sync"}
NO_TESTS = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--date", type=date.fromisoformat, required=True)
    parser.add_argument("--no-ml", action="store_true", help="keep the existing ML outputs")
    parser.add_argument("--until", help="stop after this stage (e.g. marts: ingest + build)")
    parser.add_argument("--from", dest="start", help="start at this stage (skip those before)")
    parser.add_argument("--save-before", type=Path, help="copy the state here before each stage")
    parser.add_argument("--kill-in", help="SIGKILL this process mid-way through this stage")
    args = parser.parse_args(argv)

    from customer720.settings import get_settings
    from orchestrate.stages import run_stage, stages

    if args.save_before or args.kill_in:
        sys.path.insert(0, str(FAULTS))
    if args.kill_in:
        import killpoints

        killpoints.install(args.kill_in)

    # The writing stages in run order; the recommender keeps ranking with the blend (no
    # training of its own here). Without ML, its outputs exist: the two builds cover all.
    out: dict = {}
    todo = stages(gates=False, ml=not args.no_ml, skip=("train_recommender",))
    if args.start:
        todo = todo[[s.name for s in todo].index(args.start) :]
    for stage in todo:
        if args.save_before:
            from faultkit import save_state

            save_state(get_settings().local_dir, args.save_before / stage.name)
        kwargs = {"args": NO_TESTS} if stage.name in ("marts", "score_marts") else {}
        out[KEYS.get(stage.name, stage.name)] = run_stage(stage.name, args.date, **kwargs).summary
        if stage.name == args.until:
            break
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
