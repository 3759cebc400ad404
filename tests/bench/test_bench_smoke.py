"""Smoke run of the benchmark harness: a tiny company through the cheap steps.

Asserts what a user of `make bench` relies on: the report (JSON, Markdown, chart) is
written, every measured step has wall/CPU/peak-RSS figures, the ratio fields are there
and the ingest/limit ratio is computed from this run. No timing is asserted.
"""

from __future__ import annotations

import json
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
    # the events loaded by our ingest are exactly the ones the bare read_json counted
    loaded = steps["full/ingest_events"]["summary"]["rows_loaded"]
    assert loaded == steps["reference/ref_read_json"]["summary"]["rows"] > 0


def test_make_target_runs_the_harness() -> None:
    dry = subprocess.run(
        ["make", "-n", "bench", "SCALE=M"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "-m bench --scale M" in dry.stdout
