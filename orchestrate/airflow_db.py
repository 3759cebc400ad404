"""Airflow's metadata DB, prepared in one process of Airflow's environment.

    python -m orchestrate.airflow_db [--orphans FILE] [DAG_ID ...]

writes ``airflow.cfg`` when there is none, creates or migrates the DB (``initdb``, what
``airflow standalone`` does first: tables, the default pool), sets the ``warehouse_writer`` pool that serialises DuckDB writers and,
with ``--orphans``, marks failed the runs a stopped run left queued or running and pauses
the ``DAG_ID``s it had unpaused (orchestrate/orphans.py), writing those runs as JSON to
FILE (Airflow logs to stdout).

One process instead of ``airflow db migrate``, ``airflow pools set`` and the orphans'
check one after another: each imported Airflow again (~3 s of CPU, far more on a busy
machine) before a run could start its scheduler.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from customer720.settings import WAREHOUSE_POOL


def prepare() -> None:
    """airflow.cfg, the DB at Airflow's schema head, and the writers' pool of one slot."""
    from airflow.configuration import write_default_airflow_configuration_if_needed

    # What Airflow's CLI does before every command, and only the CLI: a new Airflow home
    # gets its airflow.cfg with the generated fernet key and JWT secret here, before the
    # components start. Else each would make a JWT secret of its own, and the API server
    # would reject the scheduler's tokens ("Invalid auth token": every task fails).
    write_default_airflow_configuration_if_needed()
    from airflow.models.pool import Pool
    from airflow.utils import db

    db.initdb()
    Pool.create_or_update_pool(
        WAREHOUSE_POOL, 1, "DuckDB allows one writing process", include_deferred=False
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrate.airflow_db")
    parser.add_argument(
        "--orphans", type=Path, metavar="FILE", help="fail runs left by a stopped run: JSON here"
    )
    parser.add_argument("pause", nargs="*", help="DAGs to pause again (with --orphans)")
    args = parser.parse_args(argv)
    prepare()
    if args.orphans:
        from orchestrate.orphans import fail_orphaned_runs

        args.orphans.write_text(json.dumps(fail_orphaned_runs(args.pause)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
