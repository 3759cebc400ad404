"""Run the DAG chain through a real Airflow scheduler: ``run``, ``backfill``, ``train``.

The pipeline is a chain of DAGs linked by Airflow assets (ingest → transform → score, and
train weekly; see orchestrate/dag_support.py; the order is ``orchestrate.stages.chain``).
A command starts one Airflow (orchestrate/scheduler.py: ``make airflow``'s when it is up,
else its own, stopped at the end), triggers ``customer720_ingest`` with conf
``{"as_of": D}`` and follows the runs its asset events start (transform, then score), as
in production; when a model is missing (or ``--train``) it triggers ``customer720_train``
after transform and starts score itself afterwards. Each run's tasks are printed as their
states change, a failed task with its log's reason, and the chain stops at the first
failed run (a failed quality gate stops the date there, before anything is published).
The run summary is printed at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from datetime import date, timedelta

from rich.console import Console

from customer720.settings import Settings
from orchestrate import runlock, stages
from orchestrate.preflight import PreflightError, Sources, check_date, check_sources
from orchestrate.scheduler import (
    POLL_S,
    AirflowApi,
    AirflowError,
    airflow_for_run,
    prepare_db,
    unpaused_file,
)
from orchestrate.stages import chain, dag_id

log = logging.getLogger(__name__)

INGEST, TRANSFORM = dag_id(stages.INGEST), dag_id(stages.TRANSFORM)
TRAIN, SCORE = dag_id(stages.TRAIN), dag_id(stages.SCORE)
DAG_IDS = tuple(chain(train=True))


def prepare_airflow(settings: Settings) -> None:
    """Airflow's metadata DB and the pool that serialises DuckDB writers
    (orchestrate/airflow_db.py). A run whose Airflow is its own does this as it starts it.

    No ``dbt parse`` here (Cosmos needed the manifest to draw the DAG; the dbt tasks do
    not): a parse without the run's vars only made the first build parse the project again.
    """
    try:
        prepare_db(settings)
    except AirflowError as exc:
        raise SystemExit(str(exc)) from None


def preflight(
    settings: Settings, days: list[date] | None, console: Console
) -> tuple[list[date], Sources]:
    """Before the first task: the sources there, and ``days`` within the data they hold
    (default: their newest day). Raises ``PreflightError`` naming what is wrong."""
    sources = check_sources(settings)
    if not days:
        if sources.newest is None:
            raise PreflightError("the sources hold no dated data: give --date")
        days = [sources.newest]
    for day in days:
        check_date(day, sources)
    for warning in sources.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    return days, sources


def default_run_date(settings: Settings) -> date:
    """The newest day in the sources (CRM orders, event day folders)."""
    newest = check_sources(settings).newest
    if newest is None:
        raise PreflightError("the sources hold no dated data: give --date")
    return newest


def _iso(days: list[date | None]) -> list[str]:
    return [d.isoformat() for d in days if d is not None]


def failure_reason(log_text: str) -> str:
    """The lines of a failed task's log that say why it failed: a gate's failed
    expectations (up to its data docs), else the errors, else the log's tail."""
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        if "QualityGateFailed" in line or "quality gate '" in line:
            block = [line]
            for follow in lines[i + 1 : i + 40]:
                block.append(follow)
                if "Data docs:" in follow:
                    break
            return "\n".join(block)
    failed = [ln for ln in lines if "Error" in ln or "failed" in ln.lower()][-15:]
    return "\n".join(failed or lines[-40:])


RUN_DONE = ("success", "failed")
QUIET_STATES = (None, "none", "scheduled", "queued", "deferred")  # not worth a line


def _short(dag: str) -> str:
    return dag.removeprefix("customer720_")


def _seconds(run: dict) -> float:
    from orchestrate.scheduler import parse_time

    start, end = parse_time(run.get("start_date")), parse_time(run.get("end_date"))
    return (end - start).total_seconds() if start and end else 0.0


class ChainRunner:
    """Triggers DAG runs, finds the ones their asset events start, and follows each to
    its end, printing its tasks' states as they change."""

    def __init__(self, api: AirflowApi, console: Console):
        self.api, self.console = api, console

    def trigger(self, dag: str, day: date) -> dict:
        run = self.api.trigger(dag, {"as_of": day.isoformat()})
        self.console.print(
            f"{dag} run {run['dag_run_id']} for {day}: triggered", highlight=False, soft_wrap=True
        )
        return run

    def started_by(self, dag: str, upstream: str, upstream_run: dict, timeout_s: float = 300):
        """The run of ``dag`` the asset event of ``upstream_run`` started."""
        deadline = time.monotonic() + timeout_s
        checked: set[str] = set()
        while time.monotonic() < deadline:
            for run in self.api.dag_runs_after(dag, upstream_run["start_date"]):
                if run["dag_run_id"] in checked:
                    continue
                if not run.get("start_date"):
                    # Still queued: Airflow 3.3 answers upstreamAssetEvents with HTTP 500
                    # for a run it created that has not started. Look again next poll.
                    continue
                checked.add(run["dag_run_id"])
                events = self.api.upstream_events(dag, run["dag_run_id"])
                if any(
                    e.get("source_dag_id") == upstream
                    and e.get("source_run_id") == upstream_run["dag_run_id"]
                    for e in events
                ):
                    self.console.print(
                        f"{dag} run {run['dag_run_id']}: started by {upstream}'s asset event",
                        highlight=False,
                        soft_wrap=True,
                    )
                    return run
            if not self.api.alive():
                raise AirflowError("Airflow's scheduler stopped")
            time.sleep(POLL_S)
        raise AirflowError(f"no {dag} run started from {upstream} run {upstream_run['dag_run_id']}")

    def follow(self, dag: str, run: dict) -> dict:
        """Wait for ``run`` to finish, printing task states as they change; a failed
        task's reason from its log. Returns the finished run."""
        run_id, seen = run["dag_run_id"], {}
        while True:
            run = self.api.dag_run(dag, run_id)
            tis = self.api.task_instances(dag, run_id)
            for ti in sorted(tis, key=lambda t: (t.get("start_date") or "9", t["task_id"])):
                state = ti.get("state")
                if state in QUIET_STATES or seen.get(ti["task_id"]) == state:
                    continue
                seen[ti["task_id"]] = state
                took = f"{ti['duration']:6.1f} s" if ti.get("duration") is not None else ""
                colour = {"success": "green", "failed": "red", "upstream_failed": "red"}
                tag = colour.get(state, "")
                shown = f"[{tag}]{state:<15}[/{tag}]" if tag else f"{state:<15}"
                self.console.print(
                    f"  {_short(dag):<9} {ti['task_id']:<52} {shown} {took}",
                    highlight=False,
                    soft_wrap=True,
                )
            if run["state"] in RUN_DONE:
                break
            if not self.api.alive():
                raise AirflowError("Airflow's scheduler stopped during the run")
            time.sleep(POLL_S)
        took = _seconds(run)
        if run["state"] == "success":
            self.console.print(f"[green]{dag} succeeded[/green] in {took:.0f} s", highlight=False)
            return run
        for ti in tis:
            if ti.get("state") == "failed" and ti.get("try_number"):
                try:
                    text = self.api.task_log(dag, run_id, ti["task_id"], ti["try_number"])
                except AirflowError as exc:
                    text = f"(its log could not be read: {exc})"
                self.console.print(f"--- {dag}.{ti['task_id']} failed:", highlight=False)
                self.console.print(
                    failure_reason(text), markup=False, highlight=False, soft_wrap=True
                )
        self.console.print(
            f"[red]{dag} failed[/red] after {took:.0f} s (run {run_id}; task logs in the UI)",
            highlight=False,
            soft_wrap=True,
        )
        return run


def needs_training(settings: Settings) -> bool:
    """No churn or CLV model yet, or the recommender never trained: daily scoring would
    have nothing to score with. (A recommender training that found too little data to fit
    a ranker still makes its folder; scoring then uses the blend until the weekly run.)"""
    models = settings.model_dir
    return (
        not any(models.glob("churn/*/metadata.json"))
        or not any(models.glob("clv/*/metadata.json"))
        or not (models / "recommend").is_dir()
    )


@contextlib.contextmanager
def unpaused(api: AirflowApi, settings: Settings, dag_ids: list[str]) -> Iterator[None]:
    """The DAGs as paused as they were, afterwards (runs of a paused DAG never start, and
    an unpaused one would run on its own schedule in a later `make airflow`). Their names
    are kept in a file meanwhile: if this process is killed, the next ``make airflow`` or
    run pauses them again (orchestrate/orphans.py)."""
    before = {dag: api.dag(dag)["is_paused"] for dag in dag_ids}
    left = unpaused_file(settings)
    left.write_text(json.dumps([dag for dag, paused in before.items() if paused]))
    try:
        yield
    finally:
        for dag, paused in before.items():
            if paused:
                with contextlib.suppress(AirflowError, OSError):
                    api.set_paused(dag, True)
        left.unlink(missing_ok=True)


def run_chain(
    day: date, api: AirflowApi, settings: Settings, console: Console, train: bool | None = None
) -> bool:
    """The asset chain for one date; stop at the first failed DAG run."""
    train = needs_training(settings) if train is None else train
    console.print(f"[bold]{day}[/bold]: {' → '.join(chain(train))}")
    runner = ChainRunner(api, console)
    for dag in (INGEST, TRANSFORM, *([TRAIN] if train else [])):
        api.set_paused(dag, False)
    # Training comes between transform and score: score then waits (paused, so the marts'
    # asset event does not start it) and is triggered once the models are there.
    api.set_paused(SCORE, train)
    run = runner.follow(INGEST, runner.trigger(INGEST, day))
    if run["state"] == "success":
        run = runner.follow(TRANSFORM, runner.started_by(TRANSFORM, INGEST, run))
    if run["state"] == "success" and train:
        run = runner.follow(TRAIN, runner.trigger(TRAIN, day))
        if run["state"] == "success":
            api.set_paused(SCORE, False)
            run = runner.follow(SCORE, runner.trigger(SCORE, day))
    elif run["state"] == "success":
        run = runner.follow(SCORE, runner.started_by(SCORE, TRANSFORM, run))
    if run["state"] != "success":
        console.print(
            f"[red]Stopped the chain for {day}[/red]: nothing after it ran, the published "
            f"snapshot ({settings.published}) is unchanged."
        )
        return False
    return True


def run(run_date: date | None, settings: Settings, train: bool | None = None) -> int:
    """The chain for one date (default: the newest day in the sources). Holds the chain
    lock; raises ``runlock.ChainBusy`` / ``PreflightError`` before any Airflow work."""
    console = Console()
    with runlock.hold(settings.airflow_home, "run", _iso([run_date])) as record:
        (run_date,), sources = preflight(settings, [run_date] if run_date else None, console)
        record(_iso([run_date]))
        started = time.monotonic()
        with (
            airflow_for_run(settings, console, list(DAG_IDS)) as api,
            unpaused(api, settings, DAG_IDS),
        ):
            if not run_chain(run_date, api, settings, console, train):
                return 1
    elapsed = time.monotonic() - started
    summary = settings.reports_dir / "runs" / run_date.isoformat() / "summary.md"
    if not summary.exists() or summary.stat().st_mtime < time.time() - elapsed:
        # A DAG run without tasks "succeeds" too (e.g. a date Airflow will not run).
        console.print(f"[red]The runs for {run_date} wrote no run summary.[/red]")
        return 1
    console.print(summary.read_text(), markup=False, highlight=False, soft_wrap=True)
    for warning in sources.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(f"[green]Pipeline succeeded in {elapsed:.0f} s.[/green]")
    return 0


def train(run_date: date | None, settings: Settings) -> int:
    """Train (and maybe promote) a churn model on the marts built for ``run_date``
    (default: the newest day in the sources)."""
    console = Console()
    with runlock.hold(settings.airflow_home, "train", _iso([run_date])) as record:
        (run_date,), _ = preflight(settings, [run_date] if run_date else None, console)
        record(_iso([run_date]))
        with (
            airflow_for_run(settings, console, list(DAG_IDS)) as api,
            unpaused(api, settings, [TRAIN]),
        ):
            api.set_paused(TRAIN, False)
            runner = ChainRunner(api, console)
            done = runner.follow(TRAIN, runner.trigger(TRAIN, run_date))
    return 0 if done["state"] == "success" else 1


def backfill(start: date, end: date, settings: Settings) -> int:
    """Replay ``start``..``end`` (inclusive) in date order; every date is idempotent.
    One Airflow for the whole range."""
    if end < start:
        raise SystemExit(f"backfill: END {end} is before START {start}")
    console = Console()
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    with runlock.hold(settings.airflow_home, "backfill", _iso([start, end])):
        preflight(settings, [start, end], console)
        results: dict[date, bool] = {}
        started = time.monotonic()
        with (
            airflow_for_run(settings, console, list(DAG_IDS)) as api,
            unpaused(api, settings, DAG_IDS),
        ):
            for day in days:
                results[day] = run_chain(day, api, settings, console)
                if not results[day]:
                    break  # later dates build on this one: fix it, then re-run the backfill
    done = sum(results.values())
    console.print(
        f"backfill {start} .. {end}: {done} of {len(days)} dates succeeded "
        f"in {time.monotonic() - started:.0f} s"
    )
    return 0 if done == len(days) else 1
