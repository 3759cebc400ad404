"""Measure one stage in a child process of its own: wall time, CPU time, peak RSS.

The parent (``bench.__main__``) calls :func:`measure`; it starts
``python -m bench.measure STAGE PARAMS_JSON RESULT_JSON``, which imports the stage (and, for
a stage Airflow runs as a task, the libraries its task processes are forked with:
``orchestrate.stages.PRELOADED_MODULES``), then times only the call (so Python start-up and
imports are not in ``seconds``) and writes:

- ``seconds`` / ``cpu_seconds``: wall and CPU time (user + system, all threads, and any
  processes the stage waited for, e.g. Airflow's) of the call;
- ``peak_rss_mb``: the child's peak resident memory, or its own children's when larger;
- ``process_seconds`` / ``process_cpu_seconds``: the whole child as the parent sees it
  (start-up and imports included);
- ``load_before`` / ``load_after``: the machine's 1-minute load average, and the niceness;
- ``scratch_bytes``: the scratch folder's size on disk after the step, and
  ``disk_peak_extra_bytes``: the most the disk's used space grew above its level at the start
  of the step while it ran (sampled every 2 s; DuckDB's spills and a publish's second copy
  show here, and so would anything else writing to that disk meanwhile).

A fresh process per stage means one stage's memory or caches never flatter the next one,
and the DuckDB file has one writer at a time, as in Airflow.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _usage() -> tuple[float, float, float]:
    """(CPU seconds of this process, CPU seconds of its waited-for children, peak RSS MB)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = max(me.ru_maxrss, kids.ru_maxrss)  # kilobytes on Linux
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime, peak_kb / 1024


def child_env(scratch: Path) -> dict[str, str]:
    """This environment minus any C720_/Airflow settings, with all state under ``scratch``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C720_", "AIRFLOW", "DBT_"))}
    env.update(C720_LOCAL_DIR=str(scratch), C720_TASK_RETRIES="0", PYTHONUNBUFFERED="1")
    return env


def scratch_bytes(scratch: Path) -> int:
    """Bytes ``scratch`` takes on disk (allocated blocks, as ``du`` counts them)."""
    total = 0
    for folder, _, files in os.walk(scratch):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except FileNotFoundError:  # a temp file gone while walking
                pass
    return total


class _DiskPeak(threading.Thread):
    """Samples the used space of ``path``'s disk until stopped; ``stop()`` returns the most
    it rose above its level at the start."""

    def __init__(self, path: Path, every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.path, self.every = path, every
        self.start_used = self.peak_used = shutil.disk_usage(path).used
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            self.peak_used = max(self.peak_used, shutil.disk_usage(self.path).used)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak_used - self.start_used


def commit(root: Path) -> str:
    """The checkout's short commit, marked ``+changes`` if its work tree differs from it."""
    git = ["git", "-C", str(root)]
    head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode:
        return "unknown"
    dirty = subprocess.run(
        git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return head.stdout.strip() + ("+changes" if dirty else "")


def measure(stage: str, params: dict[str, Any], scratch: Path, log_file: Path) -> dict[str, Any]:
    """Run ``stage`` in a child process; the measurement, with ``error`` set if it failed."""
    result_file = log_file.with_suffix(".result.json")
    result_file.unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    code_at = commit(ROOT)
    disk = _DiskPeak(scratch)
    disk.start()
    start = time.perf_counter()
    with log_file.open("w") as log:
        code = subprocess.run(
            [sys.executable, "-m", "bench.measure", stage, json.dumps(params), str(result_file)],
            cwd=ROOT,
            env=child_env(scratch),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    disk_grew = disk.stop()
    out: dict[str, Any] = {
        "process_seconds": round(time.perf_counter() - start, 2),
        "process_cpu_seconds": round(
            after.ru_utime + after.ru_stime - kids.ru_utime - kids.ru_stime, 2
        ),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "scratch_bytes": scratch_bytes(scratch),
        "disk_peak_extra_bytes": disk_grew,
        "commit": code_at,
    }
    if result_file.exists():
        out.update(json.loads(result_file.read_text()))
    if code and "error" not in out:
        tail = log_file.read_text(errors="replace").splitlines()[-15:]
        out["error"] = f"exit code {code}: " + "\n".join(tail)
    return out


def _child(stage: str, params: dict[str, Any], result_file: Path) -> int:
    import logging

    from bench.stages import AIRFLOW_TASKS, STAGES
    from orchestrate.stages import preload

    if stage in AIRFLOW_TASKS:
        preload()  # as Airflow's task processes start: with dbt and GX imported
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    fn = STAGES[stage]
    cpu0, kids0, _ = _usage()
    start = time.perf_counter()
    out: dict[str, Any] = {"niceness": os.nice(0)}
    try:
        out["summary"] = fn(params)
    except BaseException as exc:  # the report says what failed; the run goes on
        out["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        traceback.print_exc()
    seconds = time.perf_counter() - start
    cpu1, kids1, peak = _usage()
    out.update(
        seconds=round(seconds, 3),
        cpu_seconds=round((cpu1 - cpu0) + (kids1 - kids0), 3),
        peak_rss_mb=round(peak, 1),
    )
    result_file.write_text(json.dumps(out, default=str))
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])))
