"""A BI reader for the tests: query the published snapshot in a loop until told to stop.

Each round opens the snapshot read-only (as a BI tool connects), checks every table
against the snapshot's manifest (one whole version, nothing from another publish), runs
a dashboard-style join, and closes. Writes what it saw as JSON after the stop file appears.

    python tests/activate/snapshot_reader.py <published.duckdb> <stop file> <result.json>
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

from activate.publish import check_connection

PAUSE_S = 0.2  # leave the pipeline most of the two cores


def main(path: Path, stop: Path, out: Path) -> int:
    seen: dict = {"rounds": 0, "errors": [], "versions": {}, "problems": []}
    while True:
        last = stop.exists()  # one more round after the stop sign: the final version is read
        try:
            with duckdb.connect(str(path), read_only=True) as con:
                check = check_connection(con)
                joined = con.execute(
                    """select count(*) from marts.dim_customer_720 d
                       left join marts.customer_churn_scores s using (customer_key)"""
                ).fetchone()[0]
        except Exception as exc:  # noqa: BLE001 - every failure is what the test counts
            seen["errors"].append(f"{type(exc).__name__}: {exc}")
        else:
            seen["rounds"] += 1
            seen["versions"][check.publish_id] = seen["versions"].get(check.publish_id, 0) + 1
            if joined != check.tables.get("marts.dim_customer_720"):
                check.problems.append(f"dashboard join saw {joined} customers")
            seen["problems"] += [f"{check.publish_id}: {p}" for p in check.problems]
        if last:
            break
        time.sleep(PAUSE_S)
    out.write_text(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
