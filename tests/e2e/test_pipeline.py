"""End to end: a tiny demo company through the real Airflow DAG chain, run by a scheduler.

Asserts what a user relies on after `make run`: every simulated person with CRM data is
one row of dim_customer_720, every eligible customer has a churn probability in [0, 1],
recommendations exist, the CRM received the scores, a second run changes nothing, each
DAG of the chain updated its asset for the date, and a date whose data fails the raw
gate (a day with no events; then the same day delivered with the simulator's dirty modes
at high rates) stops before publishing and leaves the snapshot as it was.

The first run starts its own scheduler; then `make airflow` comes up and the second run and
the dirty day use its scheduler; every run is then read back through the REST API: each
DAG's runs, their durations, and every task's log. While the UI is up, headless Chromium
(Debian's, `make chromium`) logs in as a user does and opens a dbt task's log page.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

CUSTOMERS, DAYS, SEED = 500, 300, 11
DIRTY_DAY = "malformed_json=0.3,missing_ids=0.2,clock_skew=0.3,schema_drift=0.3"


def _run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        code = subprocess.run(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:])
        pytest.fail(f"{' '.join(cmd[1:])} failed ({code}):\n{tail}")


def _run_failing_date(day: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The chain for a date expected to fail: its output is what the test looks at."""
    cmd = [sys.executable, "-m", "orchestrate", "run", "--date", day]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Api:
    """Airflow's REST API as `make airflow` serves it (admin, its generated password)."""

    def __init__(self, port: int, home: Path):
        self.base = f"http://127.0.0.1:{port}"
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        body = {"username": "admin", "password": password["admin"]}
        self.token = self._call("POST", "/auth/token", body)["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if getattr(self, "token", "") else {}),
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"{}")

    def get(self, path: str) -> dict:
        return self._call("GET", "/api/v2" + path)


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _log_text(content: list) -> str:
    lines = []
    for record in content:
        if isinstance(record, dict):
            # as the UI shows it: an error-level record stands out
            level = "ERROR " if record.get("level") in ("error", "critical") else ""
            lines.append(level + str(record.get("event", "")))
            lines += [str(e.get("exc_value", "")) for e in record.get("error_detail") or []]
        else:
            lines.append(str(record))
    return "\n".join(lines)


def _airflow_history(api: _Api) -> dict:
    """Every run of the chain's DAGs, and every task's first-try log, through the REST API."""
    dags = ("customer720_ingest", "customer720_transform", "customer720_train", "customer720_score")
    return {dag: _dag_history(api, dag) for dag in dags}


def _dag_history(api: _Api, dag: str) -> list[dict]:
    runs = api.get(f"/dags/{dag}/dagRuns?limit=100&order_by=run_after")["dag_runs"]
    for run in runs:
        base = f"/dags/{dag}/dagRuns/{_q(run['dag_run_id'])}/taskInstances"
        run["tasks"] = {}
        for ti in api.get(f"{base}?limit=100")["task_instances"]:
            if not ti.get("try_number"):
                continue  # never ran (upstream failed)
            log = api.get(f"{base}/{_q(ti['task_id'])}/logs/1?full_content=true")
            run["tasks"][ti["task_id"]] = (ti["state"], _log_text(log.get("content") or []))
    return runs


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
CHROMIUM_ARGS += ["--disable-background-networking", "--disable-component-update"]
# The task whose log page the browser opens, and lines it logs at the end of its log (the
# log view opens there and renders only the lines in sight): run_dbt's node lines.
UI_TASK = "dbt_marts"
UI_LINES = (re.compile(r"dbt build: \d+ nodes"), re.compile(r"SUCCESS\s+model\s+\w+"))


def _task_log_page(port: int, home: Path, dag: str, run_id: str, task: str, shot: Path) -> str:
    """The text of a task instance's page in the Airflow UI (its log is the page's first
    tab: ``/dags/{dag}/runs/{run}/tasks/{task}``), reached the way a user does: the login
    form of Airflow's simple auth manager with `make airflow`'s admin password."""
    from playwright.sync_api import sync_playwright

    password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/dags/{_q(dag)}/runs/{_q(run_id)}/tasks/{_q(task)}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # Tall: the log view renders only the lines in sight.
            page = browser.new_page(viewport={"width": 1600, "height": 6000})
            page.goto(url)
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", password["admin"])
            page.click("button[type=submit]")
            page.wait_for_url(lambda u: "/auth/login" not in u, timeout=120_000)
            if not page.url.startswith(url):
                page.goto(url)
            # Waits for the log to load (not a timing assertion: the test reads the text).
            try:
                page.get_by_text(UI_LINES[0]).first.wait_for(timeout=120_000)
            except Exception:  # the assertion on the text below says what was there
                pass
            page.screenshot(path=str(shot), full_page=True)
            return page.inner_text("body")
        finally:
            browser.close()


def _start_ui(env: dict[str, str], log: Path) -> subprocess.Popen:
    ui = subprocess.Popen(
        [sys.executable, "-m", "orchestrate", "ui"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 480
    while "Airflow UI:" not in log.read_text():
        if ui.poll() is not None or time.monotonic() > deadline:
            _stop_ui(ui)
            pytest.fail(f"make airflow did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(2)
    return ui


def _stop_ui(ui: subprocess.Popen) -> None:
    ui.send_signal(signal.SIGINT)
    try:
        ui.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(ui.pid, signal.SIGKILL)


def _published_counts(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
        return {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for (t,) in tables}


def _publish_id(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select max(publish_id) from meta.publish_manifest").fetchone()[0]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    local = tmp_path_factory.mktemp("e2e") / "local"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C720_", "AIRFLOW"))}
    env.update(C720_LOCAL_DIR=str(local), C720_TASK_RETRIES="0")
    logs = local.parent
    _run(
        [
            sys.executable,
            "-m",
            "simulator",
            "--customers",
            str(CUSTOMERS),
            "--days",
            str(DAYS),
            "--seed",
            str(SEED),
            "--out",
            str(local / "sources"),
            "-q",
        ],
        env,
        logs / "simulate.log",
    )
    meta = json.loads((local / "sources" / "simulation.json").read_text())
    _run([sys.executable, "-m", "orchestrate", "run"], env, logs / "run1.log")
    first = _published_counts(local / "published.duckdb")
    with duckdb.connect(str(local / "warehouse.duckdb")) as con:
        nodes = con.execute(
            "select contact_id, customer_key from intermediate.int_identity_nodes_resolved "
            "where contact_id is not null"
        ).df()
        eligible = con.execute(
            f"select customer_key from ml.customer_features where cutoff_date = date '{meta['end']}'"
        ).df()
        scores = con.execute("select * from marts.customer_churn_scores").df()
        value = con.execute("select * from marts.customer_value_scores").df()
        dim = con.execute(
            "select customer_key, churn_probability, clv, revenue_at_risk, save_rank "
            "from marts.dim_customer_720"
        ).df()
    crm = sa.create_engine(f"sqlite:///{local / 'sources' / 'crm.sqlite'}")
    with crm.connect() as con:
        written = pd.read_sql_query(sa.text("select * from c720_customer_scores"), con)
        contacts = pd.read_sql_query(
            sa.text("select contact_id, marketing_consent, is_deleted from contacts"), con
        )
    # `make airflow` for the rest (with retries on): the second run and the dirty day use
    # its scheduler, and its API server reads every run's task logs afterwards.
    port = _free_port()
    ui_env = {**env, "C720_AIRFLOW_PORT": str(port), "C720_TASK_RETRIES": "2"}
    ui_env["C720_TIME_SCHEDULES"] = "0"  # no daily run of the ingest DAG for today
    ui = _start_ui(ui_env, logs / "ui.log")
    try:
        _run([sys.executable, "-m", "orchestrate", "run"], env, logs / "run2.log")
        with crm.connect() as con:
            audit = pd.read_sql_query(
                sa.text("select * from c720_sync_audit order by synced_at"), con
            )
        crm.dispose()
        published = local / "published.duckdb"
        before_bad_day = (published.read_bytes(), _publish_id(published))
        # The day after the demo ends is outside the data: preflight refuses it, naming the range.
        bad_day = (date.fromisoformat(meta["end"]) + timedelta(days=1)).isoformat()
        bad = _run_failing_date(bad_day, env)
        after_empty_day = (published.read_bytes(), _publish_id(published))
        # Then that day arrives, but dirty: a third of its event lines broken, ids missing,
        # clocks skewed. The load rejects the file and the raw gate stops the date again.
        _run(
            [sys.executable, "-m", "simulator", "--append-days", "1"]
            + ["--out", str(local / "sources"), "--dirty", DIRTY_DAY, "-q"],
            env,
            logs / "simulate_dirty_day.log",
        )
        # With retries on (the UI's scheduler has 2): a dirty delivery is a data error,
        # failed at once, never retried.
        dirty = _run_failing_date(bad_day, env)
        history = _airflow_history(_Api(port, local / "airflow"))
        transform = [r for r in history["customer720_transform"] if r["state"] == "success"]
        ui_page = None
        if CHROMIUM.exists() and transform:
            try:
                ui_page = _task_log_page(
                    port,
                    local / "airflow",
                    "customer720_transform",
                    transform[-1]["dag_run_id"],
                    UI_TASK,
                    logs / "ui_task_log.png",
                )
            except Exception as exc:  # the browser test fails with it, not every test
                ui_page = f"the browser failed: {exc!r}"
    finally:
        _stop_ui(ui)
    airflow_db = sqlite3.connect(local / "airflow" / "airflow.db")
    dirty_tasks = airflow_db.execute(
        "select task_id, state, try_number from task_instance where run_id = ("
        " select run_id from dag_run where dag_id = 'customer720_ingest' order by id desc limit 1)"
        " and dag_id = 'customer720_ingest'"
    ).fetchall()
    asset_events = airflow_db.execute(
        "select a.name, e.extra from asset_event e join asset a on a.id = e.asset_id"
    ).fetchall()
    airflow_db.close()
    return {
        "local": local,
        "meta": meta,
        "first": first,
        "second": _published_counts(local / "published.duckdb"),
        "nodes": nodes,
        "eligible": eligible,
        "scores": scores,
        "value": value,
        "dim": dim,
        "written": written,
        "contacts": contacts,
        "audit": audit,
        # the warehouse keys contacts by text ids; the simulator's truth by its integers
        "truth": pd.read_parquet(local / "sources" / "truth" / "contact_persons.parquet").astype(
            {"contact_id": str}
        ),
        "bad_day": bad_day,
        "bad_run": bad,
        "published_before_bad_day": before_bad_day,
        "published_after_bad_day": after_empty_day,
        "dirty_run": dirty,
        "dirty_tasks": {task: (state, tries) for task, state, tries in dirty_tasks},
        "published_after_dirty_day": (published.read_bytes(), _publish_id(published)),
        "asset_events": [(name, json.loads(extra or "{}")) for name, extra in asset_events],
        "history": history,
        "ui_page": ui_page,
    }


def test_every_person_with_crm_data_is_one_row(pipeline: dict) -> None:
    mapping = pipeline["truth"].merge(pipeline["nodes"], on="contact_id", how="left")
    assert mapping["customer_key"].notna().all(), "a CRM contact has no customer_key"
    keys_per_person = mapping.groupby("person_id")["customer_key"].nunique()
    persons_per_key = mapping.groupby("customer_key")["person_id"].nunique()
    assert (keys_per_person == 1).all(), "a person is split across customer keys"
    assert (persons_per_key == 1).all(), "two persons share a customer key"
    dim_counts = pipeline["dim"]["customer_key"].value_counts()
    assert dim_counts.max() == 1
    assert set(mapping["customer_key"]) <= set(dim_counts.index)


def test_every_eligible_customer_has_a_probability(pipeline: dict) -> None:
    scores = pipeline["scores"]
    assert len(pipeline["eligible"]) > 0
    assert set(pipeline["eligible"]["customer_key"]) == set(scores["customer_key"])
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["top_reasons"].str.len().gt(0).all()


def test_every_scored_customer_has_a_clv_and_revenue_at_risk(pipeline: dict) -> None:
    """The account team's view: CLV for every churn-scored customer, revenue at risk =
    P(churn) × CLV in the score mart and the 720° view, and the "who to save" rank in the
    order of revenue at risk; the CRM gets the same figures."""
    value, scores, dim = pipeline["value"], pipeline["scores"], pipeline["dim"]
    assert set(value["customer_key"]) == set(scores["customer_key"])
    assert (value["clv"] >= 0).all() and value["clv"].gt(0).mean() > 0.5
    expected = value["churn_probability"] * value["clv"]
    assert value["revenue_at_risk"].to_numpy() == pytest.approx(expected.to_numpy(), abs=1e-6)
    scored = dim[dim["clv"].notna()]
    assert len(scored) == len(value)
    assert scored["revenue_at_risk"].to_numpy() == pytest.approx(
        (scored["churn_probability"] * scored["clv"]).to_numpy(), abs=1e-6
    )
    ranked = value.sort_values("save_rank")
    assert ranked["save_rank"].tolist() == list(range(1, len(value) + 1))
    assert ranked["revenue_at_risk"].is_monotonic_decreasing
    written = pipeline["written"]
    assert written["clv"].notna().all() and written["save_rank"].notna().all()


def test_recommendations_exist(pipeline: dict) -> None:
    assert pipeline["first"]["customer_recommendations"] > 0


def test_crm_received_scores_only_where_allowed(pipeline: dict) -> None:
    written, contacts = pipeline["written"], pipeline["contacts"].set_index("contact_id")
    assert len(written) > 0
    allowed = contacts.loc[written["contact_id"]]
    assert allowed["marketing_consent"].astype(bool).all()
    assert not allowed["is_deleted"].astype(bool).any()
    assert written["churn_probability"].between(0, 1).all()


def test_second_run_changes_nothing(pipeline: dict) -> None:
    assert pipeline["second"] == pipeline["first"]
    last = pipeline["audit"].iloc[-1]
    assert (last["inserted"], last["updated"]) == (0, 0)


def test_each_dag_of_the_chain_updated_its_asset_for_the_date(pipeline: dict) -> None:
    end = pipeline["meta"]["end"]
    for asset in (
        "customer720_raw_checked",
        "customer720_marts_checked",
        "customer720_churn_model",
        "customer720_published_marts",
    ):
        dates = [e.get("as_of") for name, e in pipeline["asset_events"] if name == asset]
        assert end in dates, f"{asset} has no event for {end}: {dates}"


def test_a_date_after_the_data_is_refused_before_airflow(pipeline: dict) -> None:
    bad, day = pipeline["bad_run"], pipeline["bad_day"]
    assert bad.returncode != 0
    assert pipeline["published_after_bad_day"] == pipeline["published_before_bad_day"]
    first = date.fromisoformat(pipeline["meta"]["end"]) - timedelta(days=DAYS - 1)
    assert f"{day} is outside the data" in bad.stderr
    assert f"{first} .. {pipeline['meta']['end']}" in bad.stderr


def test_a_dirty_day_stops_at_the_raw_gate_with_its_reasons(pipeline: dict) -> None:
    dirty, day = pipeline["dirty_run"], pipeline["bad_day"]
    assert dirty.returncode != 0
    assert pipeline["published_after_dirty_day"] == pipeline["published_before_bad_day"]
    assert not any(e.get("as_of") == day for _, e in pipeline["asset_events"])
    # The gate names the rejected file and why, in the output, the task log and the docs.
    source = f"date={day}/part-00000.json.gz"
    ingest = pipeline["history"]["customer720_ingest"][-1]
    assert ingest["state"] == "failed" and ingest["conf"] == {"as_of": day}, ingest
    for text in (dirty.stdout, ingest["tasks"]["check_raw"][1]):
        assert "quality gate 'raw' failed" in text
        assert f"{source}: not loaded" in text and "malformed record" in text
    # Data errors fail once, without retry, though the run allowed two.
    assert pipeline["dirty_tasks"]["load_events"] == ("failed", 1), pipeline["dirty_tasks"]
    assert pipeline["dirty_tasks"]["check_raw"] == ("failed", 1), pipeline["dirty_tasks"]
    docs = pipeline["local"] / "reports" / "quality" / day / "gx" / "uncommitted" / "data_docs"
    # The day's events gate failed too (its file was rejected: no events), in the docs.
    assert list(docs.rglob("validations/raw_web_events_day/**/*.html")), docs
    pages = [p.read_text() for p in docs.rglob("validations/raw_loads/**/*.html")]
    assert any(source in page and "malformed record" in page for page in pages), docs


def test_every_run_is_a_real_airflow_run_with_its_task_logs(pipeline: dict) -> None:
    """Two `make run`s: two runs of each daily DAG in Airflow's history (not replaced), each
    with its true duration, a meaningful trigger, and every task's log in the UI naming
    what the task did."""
    history = pipeline["history"]
    for dag in ("customer720_ingest", "customer720_transform", "customer720_score"):
        done = [r for r in history[dag] if r["state"] == "success"]
        assert len(done) >= 2, (dag, [(r["dag_run_id"], r["state"]) for r in history[dag]])
    assert [r["state"] for r in history["customer720_train"]] == ["success"]
    assert {r["run_type"] for r in history["customer720_ingest"]} == {"manual"}
    assert "asset_triggered" in {r["run_type"] for r in history["customer720_transform"]}
    for dag, runs in history.items():
        for run in runs:
            took = datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(
                run["start_date"]
            )
            assert timedelta(0) < took < timedelta(hours=1), (dag, run["dag_run_id"], took)
            if run["state"] != "success":
                continue
            assert run["tasks"], (dag, run["dag_run_id"])
            for task, (state, log) in run["tasks"].items():
                assert state == "success" and log.strip(), (dag, task, log[-500:])
                assert re.search(_what_it_did(task), log), (dag, task, log[-2000:])


def test_each_dbt_task_logs_every_node_it_built_with_its_status(pipeline: dict) -> None:
    """A dbt task is one `dbt build`: its log has a line per model, seed, snapshot and
    test with its status and time, and no line at error level."""
    for dag, group in (("customer720_transform", "dbt_"), ("customer720_score", "dbt_")):
        run = [r for r in pipeline["history"][dag] if r["state"] == "success"][-1]
        dbt_tasks = {t: log for t, (_, log) in run["tasks"].items() if t.startswith(group)}
        assert dbt_tasks, (dag, sorted(run["tasks"]))
        for task, log in dbt_tasks.items():
            lines = re.findall(
                r"^\s*(SUCCESS|PASS)\s+(model|seed|snapshot|test|unit_test)\s+(\S+)\s+[\d.]+ s$",
                log,
                re.M,
            )
            kinds = {kind for _, kind, _ in lines}
            assert "model" in kinds and "test" in kinds, (dag, task, log[-2000:])
            # no failed node, and nothing at error level in a green task's log (dbt's
            # semaphores once leaked: multiprocessing's resource tracker said so at exit)
            assert not re.search(r"^\s*(ERROR|FAIL)\s", log, re.M), (dag, task, log[-2000:])


def test_the_airflow_ui_shows_a_dbt_task_log_in_a_browser(pipeline: dict) -> None:
    """Acceptance 6: headless Chromium logs into the Airflow UI and sees the log page of a
    finished dbt task with the lines that task logged."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `make chromium` installs it")
    text = pipeline["ui_page"]
    assert text is not None, "no successful transform run to open"
    assert "Sign into Airflow" not in text, text[:2000]
    assert UI_TASK in text, text[:3000]
    for line in UI_LINES:
        assert line.search(text), (line.pattern, text[-3000:])


def _what_it_did(task_id: str) -> str:
    """A pattern the task's log must match: its stage, or a dbt node line of its layer."""
    stages = {
        "extract_crm": "stage ingest_crm for",
        "load_events": "stage ingest_events for",
        "check_raw": "stage quality_raw for",
        "check_marts": "stage quality_marts for",
        "train_churn": "stage train_churn for",
        "train_clv": "stage train_clv for",
        "train_recommender": "stage train_recommender for",
        "score_churn": "stage score_churn for",
        "score_clv": "stage score_clv for",
        "recommend": "stage recommend for",
        "monitor_models": "stage monitor_models for",
        "check_scores": "stage quality_scores for",
        "check_models": "stage quality_models for",
        "publish": "stage publish for",
        "sync_crm": "stage crm_writeback for",
        "summarize": "summary.md",
    }
    if task_id in stages:
        return re.escape(stages[task_id])
    built = {"dbt_marts": "fct_orders", "dbt_score_marts": "customer_churn_scores"}
    return rf"SUCCESS\s+model\s+{built[task_id]}\s+[\d.]+ s"
