"""python -m orchestrate: run the pipeline through Airflow (one date, a range, training),
or open its UI.

    python -m orchestrate run [--date D] [--train/--no-train]   # make run
    python -m orchestrate backfill --start S --end E            # make backfill
    python -m orchestrate train [--date D]                      # make train
    python -m orchestrate prepare                                # Airflow DB, pool
    python -m orchestrate ui | stop                              # make airflow / airflow-stop
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from customer720 import cli
from customer720.settings import get_settings
from orchestrate.launcher import backfill, prepare_airflow, run, train
from orchestrate.preflight import PreflightError
from orchestrate.runlock import ChainBusy
from orchestrate.scheduler import AirflowError
from orchestrate.ui import stop, ui


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrate",
        description="Run the customer720 DAG chain through Airflow (one date, a range), or its UI.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser(
        "run", help="run the DAG chain for one date through an Airflow scheduler"
    )
    run_p.add_argument(
        "--date",
        type=date.fromisoformat,
        help="logical date YYYY-MM-DD (default: the newest day in the sources)",
    )
    run_p.add_argument(
        "--train",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the training DAG (default: only when a model has never been trained)",
    )
    train_p = sub.add_parser("train", help="run the training DAG for one date (make train)")
    train_p.add_argument(
        "--date", type=date.fromisoformat, help="default: the newest day in the sources"
    )
    back_p = sub.add_parser("backfill", help="run the chain for every date START..END, in order")
    back_p.add_argument("--start", type=date.fromisoformat, required=True)
    back_p.add_argument("--end", type=date.fromisoformat, required=True)
    sub.add_parser("prepare", help="create/migrate Airflow's metadata DB and pools only")
    sub.add_parser("ui", help="start the Airflow UI (airflow standalone) until Ctrl-C")
    sub.add_parser("stop", help="stop an Airflow UI started with `ui`")
    args = parser.parse_args(argv)
    cli.setup()
    settings = get_settings()
    if args.command == "prepare":
        prepare_airflow(settings)
        return 0
    if args.command == "ui":
        return ui(settings)
    if args.command == "stop":
        return stop(settings)
    try:
        if args.command == "backfill":
            return backfill(args.start, args.end, settings)
        if args.command == "train":
            return train(args.date, settings)
        return run(args.date, settings, args.train)
    except (ChainBusy, PreflightError) as exc:
        # Another run holds the chain, or the sources are not fit to run: nothing started.
        print(f"python -m orchestrate {args.command}: {exc}", file=sys.stderr)
        return 2
    except AirflowError as exc:
        # Airflow did not come up, or lost the run: the date did not complete.
        print(f"python -m orchestrate {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
