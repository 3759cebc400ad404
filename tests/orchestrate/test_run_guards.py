"""What `python -m orchestrate run` checks before any Airflow work: one run at a time,
the sources there, the date within the data (issue #21)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from customer720.settings import PROJECT_ROOT, get_settings

FIRST, LAST = "2024-01-01", "2024-01-30"


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny simulated company: 200 people, 30 days from 2024-01-01."""
    out = tmp_path_factory.mktemp("company") / "sources"
    subprocess.run(
        [sys.executable, "-m", "simulator", "--customers", "200", "--days", "30"]
        + ["--out", str(out), "-q"],
        check=True,
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("C720_")},
    )
    return out


@pytest.fixture
def env(company: Path, local_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("C720_SOURCES_DIR", str(company))
    monkeypatch.delenv("C720_NO_EVENTS", raising=False)
    return {**os.environ, "C720_TASK_RETRIES": "0"}


def _orchestrate(args: list[str], env: dict[str, str], limit: float) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "orchestrate", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=limit + 30,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def test_a_second_run_exits_at_once_naming_the_holder(env: dict[str, str]) -> None:
    home = get_settings().airflow_home
    # The holder takes the lock the way the launcher does, and keeps it.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from orchestrate import runlock\n"
            f"with runlock.hold(Path({str(home)!r}), 'run', [{LAST!r}]):\n"
            "    print('held', flush=True); time.sleep(60)\n",
        ],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, output, seconds = _orchestrate(["run", "--date", "2024-01-15"], env, 5)
        assert code != 0
        assert seconds < 5, f"took {seconds:.1f} s"
        assert f"pid {holder.pid}" in output and LAST in output, output
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_file_left_by_a_dead_run_holds_nothing(env: dict[str, str]) -> None:
    from orchestrate import runlock

    home = get_settings().airflow_home
    home.mkdir(parents=True)
    runlock.lock_path(home).write_text('{"pid": 999999, "dates": ["2024-01-02"]}')
    with runlock.hold(home, "run", [LAST]) as record:
        record([LAST])
        assert f'"pid": {os.getpid()}' in runlock.lock_path(home).read_text()


def test_a_misspelt_crm_path_fails_fast_naming_it_and_creates_no_file(
    env: dict[str, str], company: Path
) -> None:
    wrong = company / "crm.sqlte"
    env = {**env, "C720_CRM_URL": f"sqlite:///{wrong}"}
    code, output, seconds = _orchestrate(["run"], env, 10)
    assert code != 0 and seconds < 10
    assert str(wrong) in output, output
    assert not wrong.exists()


def test_a_missing_crm_export_folder_fails_naming_it(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrate.preflight import PreflightError, check_sources

    monkeypatch.setenv("C720_CRM_URL", str(tmp_path / "exports"))
    with pytest.raises(PreflightError, match=str(tmp_path / "exports")):
        check_sources(get_settings())


def test_a_crm_export_folder_gives_the_data_range(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CRM delivered as a folder of CSV exports (the bring-your-own-data path): the
    range runs from the first order to the last order or status change."""
    from orchestrate.preflight import check_sources

    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "contacts.csv").write_text("contact_id,email\nc1,a@example.com\n")
    (exports / "orders.csv").write_text(
        "order_id,contact_id,ordered_at,updated_at\n"
        "o1,c1,2023-03-04 10:00:00,2023-03-04 10:00:00\n"
        "o2,c1,2023-05-06 09:00:00,2023-06-07 08:00:00\n"
    )
    monkeypatch.setenv("C720_CRM_URL", str(exports))
    monkeypatch.setenv("C720_NO_EVENTS", "1")
    sources = check_sources(get_settings())
    assert (sources.first, sources.newest) == (date(2023, 3, 4), date(2023, 6, 7))


def test_a_date_outside_the_data_fails_at_once_naming_the_range(env: dict[str, str]) -> None:
    code, output, seconds = _orchestrate(["run", "--date", "2030-01-01"], env, 10)
    assert code != 0
    assert seconds < 10, f"took {seconds:.1f} s"
    assert f"{FIRST} .. {LAST}" in output, output


def test_without_a_date_the_run_is_for_the_newest_day_in_the_sources(env: dict[str, str]) -> None:
    from rich.console import Console

    from orchestrate.launcher import preflight

    (simulation := get_settings().sources_dir / "simulation.json").rename(
        simulation.with_suffix(".moved")
    )  # the date comes from the data, not from the simulator's notes
    try:
        days, sources = preflight(get_settings(), None, Console())
    finally:
        simulation.with_suffix(".moved").rename(simulation)
    assert days == [date.fromisoformat(LAST)]
    assert (sources.first, sources.newest) == (date.fromisoformat(FIRST), days[0])


def test_the_events_folder_is_there_or_declared_absent(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrate.preflight import PreflightError, check_sources

    monkeypatch.setenv("C720_EVENTS_DIR", str(tmp_path / "no-events"))
    with pytest.raises(PreflightError, match="C720_NO_EVENTS"):
        check_sources(get_settings())
    monkeypatch.setenv("C720_NO_EVENTS", "1")
    sources = check_sources(get_settings())
    assert sources.newest == date.fromisoformat(LAST)  # from the CRM's orders alone
    assert any("C720_NO_EVENTS" in w for w in sources.warnings)
