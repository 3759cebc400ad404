"""How fast does ``ingest.load_events`` load event files, next to a bare DuckDB read_json?

Runs, in this process, on the same files, each variant ``--repeat`` times in turn (so a
busy neighbour slows all of them alike) after reading every file once (warm cache):

1. ``bare_count``: ``select count(*) from read_json('<dir>/**/*.json.gz')`` (reading and
   parsing only: an upper bound no loader reaches),
2. ``bare_create_table``: connect to a fresh DuckDB file, ``create table t as select * from
   read_json(...)``, close (reading, parsing, storing: the fair comparison; DuckDB's
   defaults, as a user would type it),
3. ``bare_create_table_unordered``: the same with ``preserve_insertion_order = false``
   (the setting ``load_events`` uses for its insert; shown so the comparison hides nothing),
4. ``load_events``: into a fresh warehouse (finding new files, checksums, reading,
   validating every record, quarantine, drift report, audit, manifest, storing into
   ``raw.web_events``, closing the warehouse).

Two summaries of the repeats: each variant's best run (least wall time; its CPU seconds
beside it), and the median over rounds of the ratio within a round (the variants of one
round ran back to back, under the same neighbours). CPU time is the process's, over all
threads: on a shared machine it depends much less on the neighbours than wall time. Prints rows/s and the ratios, and writes the result as JSON to
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
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
TARGET = 0.70


def _warm(files: list[Path]) -> int:
    """Read every file once so no variant pays for the first read from disk."""
    return sum(len(path.read_bytes()) for path in files)


def _timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process over all threads, result) of ``fn``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - cpu, out


def _bare_count(glob: str) -> int:
    con = duckdb.connect()
    try:
        sql = f"select count(*) from read_json('{glob}', format = 'newline_delimited')"
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _bare_create_table(glob: str, path: Path, ordered: bool = True) -> None:
    con = duckdb.connect(str(path))
    if not ordered:
        con.execute("set preserve_insertion_order = false")
    con.execute(
        f"create table t as select * from read_json('{glob}', format = 'newline_delimited')"
    )
    con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark ingest.load_events against a bare DuckDB read_json.",
        epilog="Make test data with: python -m simulator --customers 10000 --days 365 --out DIR",
    )
    parser.add_argument("--events-dir", type=Path, required=True, help="folder of *.json.gz files")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each variant, best one counts (default 2)"
    )
    parser.add_argument(
        "--postgres-url",
        help="also load into this (empty) Postgres database once, e.g. "
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

    os.environ.pop("C720_WAREHOUSE", None)
    from customer720.settings import get_settings
    from ingest import load_events

    runs: dict[str, list[dict]] = {}
    rows = 0
    summary = None
    with tempfile.TemporaryDirectory(prefix="c720-bench-") as tmp:

        def ours(i: int):
            os.environ["C720_LOCAL_DIR"] = f"{tmp}/local{i}"
            return load_events(events_dir, settings=get_settings())

        for i in range(args.repeat):
            variants = {
                "bare_count": partial(_bare_count, glob),
                "bare_create_table": partial(_bare_create_table, glob, Path(f"{tmp}/bare{i}.db")),
                "bare_create_table_unordered": partial(
                    _bare_create_table, glob, Path(f"{tmp}/unordered{i}.db"), ordered=False
                ),
                "load_events": partial(ours, i),
            }
            for name, fn in variants.items():
                wall, cpu, out = _timed(fn)
                runs.setdefault(name, []).append({"seconds": round(wall, 2), "cpu": round(cpu, 2)})
                print(f"  run {i + 1} {name:28s} {wall:7.2f} s  CPU {cpu:6.2f} s", flush=True)
                if name == "bare_count":
                    rows = int(out)
                if name == "load_events":
                    summary = out
            for path in Path(tmp).glob("*.db*"):
                path.unlink()  # keep the disk footprint to one copy at a time
        pg = None
        if args.postgres_url:
            os.environ["C720_WAREHOUSE"] = args.postgres_url
            os.environ["C720_LOCAL_DIR"] = f"{tmp}/local-pg"
            wall, cpu, pg_summary = _timed(lambda: load_events(events_dir, settings=get_settings()))
            pg = {
                "seconds": round(wall, 2),
                "cpu": round(cpu, 2),
                "rows_per_s": round(pg_summary.rows_loaded / wall),
            }

    assert summary is not None
    best = {name: dict(min(r, key=lambda run: run["seconds"])) for name, r in runs.items()}
    for b in best.values():
        b["rows_per_s"] = round(rows / b["seconds"])
    ours_b, ctas, count = best["load_events"], best["bare_create_table"], best["bare_count"]
    unordered = best["bare_create_table_unordered"]

    def paired(ref: str, key: str) -> float:
        """Median over rounds of ref / load_events within the round."""
        ratios = sorted(
            r[key] / o[key] for r, o in zip(runs[ref], runs["load_events"], strict=True)
        )
        return round(statistics.median(ratios), 3)

    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "duckdb": duckdb.__version__,
        "events_dir": str(events_dir),
        "files": len(files),
        "rows": rows,
        "rows_loaded": summary.rows_loaded,
        "rows_quarantined": summary.rows_quarantined,
        "repeat": args.repeat,
        "best": best,
        "runs": runs,
        "ratio_vs_create_table": round(ctas["seconds"] / ours_b["seconds"], 3),
        "cpu_ratio_vs_create_table": round(ctas["cpu"] / ours_b["cpu"], 3),
        "ratio_vs_create_table_unordered": round(unordered["seconds"] / ours_b["seconds"], 3),
        "cpu_ratio_vs_create_table_unordered": round(unordered["cpu"] / ours_b["cpu"], 3),
        "ratio_vs_count": round(count["seconds"] / ours_b["seconds"], 3),
        "paired_median_ratio_vs_create_table": paired("bare_create_table", "seconds"),
        "paired_median_cpu_ratio_vs_create_table": paired("bare_create_table", "cpu"),
        "cpu_ratio_vs_count": round(count["cpu"] / ours_b["cpu"], 3),
        "target_vs_create_table": TARGET,
    }
    if pg:
        result["load_events_postgres"] = pg
    print(f"\n{rows:,} events; best of {args.repeat} run(s) each:")
    for name, b in best.items():
        print(
            f"{name:28s} {b['seconds']:7.2f} s  {b['rows_per_s']:>9,} rows/s  CPU {b['cpu']:6.2f} s"
        )
    if pg:
        print(
            f"{'load_events (postgres)':28s} {pg['seconds']:7.2f} s  {pg['rows_per_s']:>9,} rows/s"
        )
    print(
        f"load_events vs bare create-table: {result['ratio_vs_create_table']:.0%} of its rate by "
        f"wall time, {result['cpu_ratio_vs_create_table']:.0%} by CPU time (target {TARGET:.0%}); "
        f"vs the unordered create-table {result['ratio_vs_create_table_unordered']:.0%} / "
        f"{result['cpu_ratio_vs_create_table_unordered']:.0%}; vs the bare count "
        f"{result['ratio_vs_count']:.0%} / {result['cpu_ratio_vs_count']:.0%}"
    )
    print(
        "paired within each round (median of the rounds): "
        f"{result['paired_median_ratio_vs_create_table']:.0%} of the bare create-table rate by "
        f"wall time, {result['paired_median_cpu_ratio_vs_create_table']:.0%} by CPU time"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ingest_throughput-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
