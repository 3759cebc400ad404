"""Smoke run of the benchmark harness: a tiny company through the cheap steps.

Asserts what a user of `make bench` relies on: the report (JSON, Markdown, chart) is
written, every measured step has wall/CPU/peak-RSS figures, the ratio fields are there
and the ingest/limit ratio is computed from this run. No timing is asserted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    base = tmp_path_factory.mktemp("bench-smoke")
    out = base / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--scale",
            "XS",
            "--scratch",
            str(base / "scratch"),
            "--out",
            str(out),
            "--clean",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = sorted(out.glob("bench-XS-*.json"))
    assert len(reports) == 1, reports
    return out, json.loads(reports[0].read_text()), reports[0].stem


def test_report_files_and_ratio_fields(smoke: tuple[Path, dict, str]) -> None:
    out, report, stem = smoke
    assert (out / f"{stem}.md").exists()
    assert (out / f"{stem}-time.png").stat().st_size > 0
    assert report["status"] == "finished" and report["pending"] == []
    for name in (
        "ingest_vs_limit",
        "dbt_full_vs_sql_reference",
        "train_churn_vs_bare_lightgbm",
        "dbt_incremental_vs_full",
        "daily_incremental_vs_full",
        "daily_run_vs_full_run",
        "airflow_vs_direct",
        "dbt_in_airflow_vs_plain",
    ):
        assert name in report["ratios"], name
    # measured in this run: the ingest of the full history against bare read_json
    assert report["ratios"]["ingest_vs_limit"]["value"] > 0
    assert report["ratios"]["ingest_incremental_vs_full"]["value"] > 0
    assert report["machine"]["cpus"] >= 1 and report["versions"]["duckdb"]
    md = (out / f"{stem}.md").read_text()
    assert "ingest_vs_limit" in md and "peak RSS" in md


def test_every_step_measured(smoke: tuple[Path, dict, str]) -> None:
    _, report, _ = smoke
    steps = report["steps"]
    assert "full/ingest_events" in steps and "reference/ref_read_json" in steps
    for step_id, step in steps.items():
        assert not step.get("error"), (step_id, step.get("error"))
        assert step["seconds"] > 0 and step["cpu_seconds"] >= 0, step_id
        assert step["peak_rss_mb"] > 10, step_id  # a Python process with DuckDB loaded
        assert step["disk_peak_extra_bytes"] >= 0, step_id
        # which code each step ran: the run's commit, as nothing changed the checkout
        assert step["commit"] == report["versions"]["customer720 commit"] != "unknown", step_id
    # the disk a run takes, for sizing a machine: the company, then the warehouse on it
    assert (
        0 < steps["setup/simulate"]["scratch_bytes"] < steps["full/ingest_events"]["scratch_bytes"]
    )
    # the events loaded by our ingest are exactly the ones the bare read_json counted
    loaded = steps["full/ingest_events"]["summary"]["rows_loaded"]
    assert loaded == steps["reference/ref_read_json"]["summary"]["rows"] > 0


def test_make_target_runs_the_harness() -> None:
    dry = subprocess.run(
        ["make", "-n", "bench", "SCALE=M"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "-m bench --scale M" in dry.stdout


def _step(seconds: float, cpu: float, rss: float, error: str | None = None) -> dict:
    """A step as bench.measure records it."""
    step = {
        "process_seconds": seconds + 1.5,
        "process_cpu_seconds": cpu + 1.5,
        "load_before": 1.0,
        "load_after": 1.1,
        "niceness": 5,
        "summary": {},
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": rss,
    }
    return step | ({"error": error} if error else {})


def _spark_table(md: str) -> dict[str, list[str]]:
    """The cells of the Markdown's "Spark local[*] vs DuckDB" table, by stage."""
    section = md.split("## Spark local[*] vs DuckDB", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_spark_table_renders_from_a_report(tmp_path: Path) -> None:
    """`python -m bench --render` on a report of the step shape bench.measure writes: one row
    per daily stage with Spark / DuckDB ratios, a whole-chain row of sums; a stage that
    failed on Spark says so and leaves the chain without a total."""
    from bench.__main__ import main
    from bench.plan import DAILY

    steps = {}
    for stage in DAILY:
        slow = stage == "dbt_build"
        steps[f"full/{stage}"] = _step(10.0 if slow else 2.0, 20.0 if slow else 3.0, 1500.0)
        steps[f"spark/spark_{stage}"] = _step(
            80.0 if slow else 10.0, 200.0 if slow else 24.0, 2500.0
        )
    report = {
        "scale": {"name": "S", "customers": 10_000, "days": 365},
        "started_at": "2026-12-06T00:00:00+00:00",
        "finished_at": "2026-12-06T01:00:00+00:00",
        "status": "finished",
        "scratch": str(tmp_path),
        "machine": {
            "cpus": 2,
            "cpu_model": "x",
            "memory_gb": 8,
            "load_at_start": [1, 1, 1],
            "niceness": 5,
        },
        "versions": {"duckdb": "x"},
        "data": {},
        "steps": steps,
        "pending": [],
        "ratios": {},
    }
    path = tmp_path / "bench-S-test.json"
    path.write_text(json.dumps(report))
    assert main(["--render", str(path)]) == 0

    md = path.with_suffix(".md").read_text()
    table = _spark_table(md)
    assert set(table) == {*DAILY, "**whole chain**"}
    # DuckDB s, Spark s, wall ratio, CPU ratio, DuckDB peak RSS, Spark peak RSS
    assert table["dbt_build"] == ["10.00", "80.00", "8.00", "10.00", "1,500.00", "2,500.00"]
    assert table["ingest_crm"][:4] == ["2.00", "10.00", "5.00", "8.00"]
    duck, spark = 2.0 * (len(DAILY) - 1) + 10, 10.0 * (len(DAILY) - 1) + 80
    assert table["**whole chain**"][:3] == [f"{duck:,.2f}", f"{spark:,.2f}", f"{spark / duck:.2f}"]
    ratios = json.loads(path.read_text())["ratios"]
    assert ratios["spark_chain_vs_duckdb"]["value"] == round(spark / duck, 3)
    assert ratios["spark_dbt_vs_duckdb"]["value"] == 8.0
    assert ratios["spark_ingest_vs_duckdb"]["value"] == 5.0

    steps["spark/spark_recommend"] = _step(3.0, 3.0, 900.0, error="Py4JError: the JVM died")
    path.write_text(json.dumps(report))
    assert main(["--render", str(path)]) == 0
    table = _spark_table(path.with_suffix(".md").read_text())
    assert table["recommend (failed on Spark)"][1:4] == ["–", "–", "–"]
    assert table["**whole chain**"][1:4] == ["–", "–", "–"]  # no total without every stage
    assert json.loads(path.read_text())["ratios"]["spark_chain_vs_duckdb"]["value"] is None


def test_a_run_the_disk_cannot_hold_is_refused_before_it_starts(tmp_path: Path) -> None:
    """Scale L stopped here after half an hour of simulation: the disk could not hold the
    rest. The check runs first, on the real free space of the scratch folder."""
    from bench.__main__ import disk_problem
    from bench.plan import SCALES

    free = shutil.disk_usage(tmp_path).free
    problem = disk_problem(tmp_path, free + 10**12)
    assert problem is not None and "--scratch on a larger disk" in problem
    assert disk_problem(tmp_path, 0) is None
    # the measured L run needed 70-90 GB, M about 11 GB
    assert 70e9 <= SCALES["L"].disk_bytes and 11e9 <= SCALES["M"].disk_bytes < 25e9
