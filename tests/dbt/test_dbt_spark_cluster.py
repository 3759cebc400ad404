"""The dbt project on a Spark standalone cluster: a master and one worker on 127.0.0.1.

The cluster is pyspark's own (`bin/spark-class ...deploy.master.Master` / `...Worker`), on
free ports, bound to 127.0.0.1. The hand-made raw fixture (tests/dbt/raw_fixture.py, whose
persons are known) is the raw store; ingest's hand-off writes it as Parquet; dbt builds the
`marts` selection's seed and models (their data tests run in test_dbt_spark.py, locally)
with C720_WAREHOUSE=spark://127.0.0.1:<port>,
so the work runs in the worker's executor. Afterwards the cluster is stopped and no java
process of ours is left.

Cost: one cluster and one dbt JVM for the module: 166 s on 2 shared cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psutil
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("dbt.adapters.spark")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from raw_fixture import EXPECTED_PERSONS, create_raw  # noqa: E402
from test_dbt_build import persons  # noqa: E402

from customer720.settings import get_settings  # noqa: E402
from customer720.spark import export_raw  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-03-01"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def _ours(marker: str) -> list[psutil.Process]:
    """Our java processes: their command line names this test's folder."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "java" in (proc.info["name"] or "") + cmd.split(" ")[0] and marker in cmd:
            found.append(proc)
    return found


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop each process group (the worker's executors are in the worker's group)."""
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _wait_for_worker(ui_port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as r:
                state = json.load(r)
            if any(w.get("state") == "ALIVE" for w in state.get("workers", [])):
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("the Spark worker did not register with the master in time")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A standalone master and one worker (2 cores, 2 GiB) on 127.0.0.1."""
    root = tmp_path_factory.mktemp("spark_cluster")
    port, ui, worker_ui = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(root / "work"),
        "SPARK_LOG_DIR": str(root / "logs"),
        # this test's folder in every java command line: how we find what is ours
        "SPARK_DAEMON_JAVA_OPTS": f"-Dc720.test={root}",
    }
    spark_class = str(_spark_class())
    logs = (root / "master.log").open("w"), (root / "worker.log").open("w")
    procs = [
        subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master"]
            + ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)],
            env=env,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ]
    master = f"spark://127.0.0.1:{port}"
    try:
        time.sleep(2)
        procs.append(
            subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.worker.Worker", master]
                + ["--host", "127.0.0.1", "--webui-port", str(worker_ui)]
                + ["--cores", "2", "--memory", "2g", "--work-dir", str(root / "work")],
                env=env,
                stdout=logs[1],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        _wait_for_worker(ui, time.monotonic() + 120)
        yield master, root
    finally:
        _stop(procs)
        for log in logs:
            log.close()
    # nothing of ours may be left running: master, worker, executors, the dbt driver
    deadline = time.monotonic() + 20
    while (left := _ours(str(root))) and time.monotonic() < deadline:
        time.sleep(1)
    assert not left, f"java processes left running: {[p.pid for p in left]}"


def test_dbt_build_on_a_standalone_cluster(
    cluster: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    master, root = cluster
    assert len(_ours(str(root))) >= 2, "the master and the worker should be running"
    local = root / "local"
    monkeypatch.setenv("C720_LOCAL_DIR", str(local))
    monkeypatch.setenv("C720_WAREHOUSE", master)
    settings = get_settings()
    settings.spark_dir.mkdir(parents=True)
    create_raw(settings.warehouse_path)  # the raw store
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        export_raw(con, settings)
    finally:
        con.close()

    script = (
        "from customer720.dbt import run_dbt\n"
        "from datetime import date\n"
        f"run_dbt('build', selector='marts', exclude='resource_type:test', as_of=date.fromisoformat({AS_OF!r}))\n"
    )
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        # the driver and the executors carry the test's folder too (leftover check)
        "C720_SPARK_CONF": (
            f"spark.driver.extraJavaOptions=-Dderby.system.home={settings.spark_dir} "
            f"-Dc720.test={root};spark.executor.extraJavaOptions=-Dc720.test={root};"
            "spark.executor.memory=1g"
        ),
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # the work ran on the cluster: the worker started an executor for our application
    executors = list((root / "work").glob("app-*/*/stderr"))
    assert executors, "no executor ran on the worker"

    nodes = duckdb.sql(
        "select node_id, customer_key from read_parquet('"
        f"{settings.spark_dir}/warehouse/intermediate.db/int_identity_nodes_resolved/*.parquet')"
    ).fetchall()
    assert persons(nodes) == sorted((frozenset(p) for p in EXPECTED_PERSONS), key=sorted)
    keys = {key for _, key in nodes}
    features = duckdb.sql(
        "select customer_key from read_parquet('"
        f"{settings.spark_dir}/warehouse/ml.db/customer_features/*.parquet')"
    ).fetchall()
    assert features and {key for (key,) in features} <= keys
