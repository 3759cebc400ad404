"""What a replay of D changes, table by table: the fault company run for D, D + 1, D.

    python tests/faults/replay_diff.py OUT_DIR [--append]

Runs the writing stages (``faultkit.run_date``) for D, then D + 1, then D again on a new
company in OUT_DIR, keeping the state after the first D, and prints every table of the
warehouse's marts and ml schemas whose rows of D or before differ between the first run of
D and its replay (``faultkit.differences``: counts and a few rows of each side). With
``--append`` the company starts one day shorter and the simulator appends D + 1 before the
D + 1 run, as a real source grows (CRM rows change, events arrive); without it the sources
hold D + 1 from the start. ``test_backfill_order.py`` asserts no difference with a CRM
changed by hand between the runs. Measurements: README, "Backfills and re-runs of a past
date".
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import faultkit
from faultkit import LAST, child_env, differences, run_date, save_state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a new folder for the company and the logs")
    parser.add_argument("--append", action="store_true", help="the source grows by D + 1")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    local, day = args.out / "local", LAST - timedelta(days=1)
    if args.append:
        faultkit.DAYS -= 1  # the company ends on D; the simulator appends D + 1 later
    faultkit.simulate(local, args.out / "simulate.log")
    run_date(local, day, args.out / "run0.log")
    first = save_state(local, args.out / "first_run")
    if args.append:
        cmd = [sys.executable, "-m", "simulator", "--append-days", "1", "--out",
               str(local / "sources"), "-q"]  # fmt: skip
        subprocess.run(cmd, env=child_env(local), check=True, cwd=faultkit.ROOT)
    run_date(local, day + timedelta(days=1), args.out / "run1.log")
    run_date(local, day, args.out / "run2.log")
    found = differences(first, local, through=day, parts=("warehouse",))
    for table, what in found.items():
        print(f"{table}: {what[:400]}")
    print(f"replay of {day}: {len(found)} table(s) differ from its first run")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
