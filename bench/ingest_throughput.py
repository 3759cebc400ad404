"""How fast does ``ingest.load_events`` load event files, next to a bare DuckDB read_json?

Runs three loads of the same files in this process, on this machine:

1. bare ``select count(*) from read_json('<dir>/**/*.json.gz', format='newline_delimited')``
   (reading and parsing only: an upper bound no loader reaches),
2. bare ``create table ... as select * from read_json(...)`` into a fresh DuckDB file
   (reading, parsing and storing: the fair comparison),
3. ``load_events`` into a fresh warehouse (reading, validating every record, quarantine,
   manifest, storing into ``raw.web_events``),

and prints rows/s and our share of each bare rate; the result is written as JSON to
``bench/results/``. Make the files first, e.g.::

    .venv/bin/python -m simulator --customers 10000 --days 365 --out /tmp/c720-bench -q
    .venv/bin/python bench/ingest_throughput.py --events-dir /tmp/c720-bench/events

The target is ``load_events`` >= 70 % of the bare create-table rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
TARGET = 0.70


def _warm(files: list[Path]) -> int:
    """Read every file once so no variant pays for the first read from disk."""
    total = 0
    for path in files:
        total += len(path.read_bytes())
    return total


CPU = {}


def _timed(fn, name: str) -> tuple[float, object]:
    """Wall seconds (and, in CPU, the process's CPU seconds over all threads) of ``fn``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    CPU[name] = time.process_time() - cpu
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark ingest.load_events against a bare DuckDB read_json.",
        epilog="Make test data with: python -m simulator --customers 10000 --days 365 --out DIR",
    )
    parser.add_argument("--events-dir", type=Path, required=True, help="folder of *.json.gz files")
    parser.add_argument(
        "--postgres-url",
        help="also load into this (empty) Postgres database, e.g. "
        "postgresql://postgres@127.0.0.1:5432/bench",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON result goes")
    args = parser.parse_args(argv)

    events_dir = args.events_dir.resolve()
    files = sorted(events_dir.rglob("*.json.gz"))
    if not files:
        parser.error(f"no *.json.gz files under {events_dir}")
    glob = f"{events_dir}/**/*.json.gz"
    compressed = _warm(files)
    print(f"{len(files)} files, {compressed / 1e6:.0f} MB gzip, {os.cpu_count()} cores")

    with tempfile.TemporaryDirectory(prefix="c720-bench-") as tmp:
        con = duckdb.connect()
        count_s, rows = _timed(
            lambda: con.execute(
                f"select count(*) from read_json('{glob}', format='newline_delimited')"
            ).fetchone()[0],
            "bare_count",
        )
        con.close()
        con = duckdb.connect(f"{tmp}/bare.duckdb")
        ctas_s, _ = _timed(
            lambda: con.execute(
                f"create table t as select * from read_json('{glob}', format='newline_delimited')"
            ),
            "bare_create_table",
        )
        con.close()

        os.environ["C720_LOCAL_DIR"] = f"{tmp}/local"
        os.environ.pop("C720_WAREHOUSE", None)
        from customer720.settings import get_settings
        from ingest import load_events

        ours_s, summary = _timed(
            lambda: load_events(events_dir, settings=get_settings()), "load_events"
        )
        pg = None
        if args.postgres_url:
            os.environ["C720_WAREHOUSE"] = args.postgres_url
            pg_s, pg_summary = _timed(
                lambda: load_events(events_dir, settings=get_settings()), "load_events_postgres"
            )
            pg = {"seconds": round(pg_s, 2), "rows_per_s": round(pg_summary.rows_loaded / pg_s)}

    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "duckdb": duckdb.__version__,
        "events_dir": str(events_dir),
        "files": len(files),
        "rows": rows,
        "rows_loaded": summary.rows_loaded,
        "rows_quarantined": summary.rows_quarantined,
        "bare_count": {"seconds": round(count_s, 2), "rows_per_s": round(rows / count_s)},
        "bare_create_table": {"seconds": round(ctas_s, 2), "rows_per_s": round(rows / ctas_s)},
        "load_events": {"seconds": round(ours_s, 2), "rows_per_s": round(summary.rows_in / ours_s)},
        "ratio_vs_create_table": round(ctas_s / ours_s, 3),
        # On a shared machine wall time depends on the neighbours; CPU time much less.
        "cpu_seconds": {k: round(v, 2) for k, v in CPU.items()},
        "cpu_ratio_vs_create_table": round(CPU["bare_create_table"] / CPU["load_events"], 3),
        "ratio_vs_count": round(count_s / ours_s, 3),
        "target_vs_create_table": TARGET,
    }
    if pg:
        result["load_events_postgres"] = pg
    for name in ("bare_count", "bare_create_table", "load_events", "load_events_postgres"):
        if name in result:
            r = result[name]
            print(
                f"{name:22s} {r['seconds']:7.2f} s  {r['rows_per_s']:>10,} rows/s  "
                f"(CPU {CPU[name]:.2f} s)"
            )
    print(
        f"load_events is {result['ratio_vs_create_table']:.0%} of the bare create-table rate "
        f"and {result['ratio_vs_count']:.0%} of the bare count rate (target {TARGET:.0%}); "
        f"by CPU time {result['cpu_ratio_vs_create_table']:.0%} of the create-table rate"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ingest_throughput-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
