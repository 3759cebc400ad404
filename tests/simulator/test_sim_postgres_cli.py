from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from customer720.settings import postgres_test_url
from simulator import SimulationConfig, generate

PG_ADMIN = postgres_test_url()


@pytest.fixture
def pg_database():
    try:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        admin.connect().close()
    except sa.exc.OperationalError as exc:
        pytest.skip(f"Postgres not reachable at {PG_ADMIN}: {exc}")
    name = f"sim_test_{uuid.uuid4().hex[:8]}"
    with admin.connect() as con:
        con.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_crm_in_postgres(pg_database, tmp_path):
    summary = generate(
        SimulationConfig(
            customers=200,
            days=20,
            seed=1,
            out=tmp_path,
            crm_url=pg_database,
            dirty={"duplicate_crm_rows": 0.02},
        )
    )
    assert not (tmp_path / "crm.sqlite").exists()
    engine = sa.create_engine(pg_database)
    with engine.connect() as con:
        for table, rows in summary["rows"].items():
            assert con.execute(sa.text(f'select count(*) from "{table}"')).scalar_one() == rows
        kind = con.execute(
            sa.text(
                "select data_type from information_schema.columns "
                "where table_name='orders' and column_name='ordered_at'"
            )
        ).scalar_one()
        assert kind.startswith("timestamp")
    engine.dispose()


def test_cli_help_and_run(tmp_path):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    help_text = subprocess.run(
        [sys.executable, "-m", "simulator", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    for option in ("--customers", "--append-days", "--crm-url", "--dirty", "malformed_json"):
        assert option in help_text
    out = tmp_path / "cli"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "--customers",
            "150",
            "--days",
            "50",
            "--out",
            str(out),
            "-q",
        ],
        env=env,
        check=True,
    )
    subprocess.run(
        [sys.executable, "-m", "simulator", "--append-days", "2", "--out", str(out), "-q"],
        env=env,
        check=True,
    )
    assert json.loads((out / "simulation.json").read_text())["days"] == 52
    result = subprocess.run(
        [sys.executable, "-m", "simulator", "oracle", "--out", str(out), "--horizon", "20"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "auc_oracle" in json.loads(result.stdout)
    bad = subprocess.run(
        [sys.executable, "-m", "simulator", "--dirty", "nope=1", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode != 0 and "choose from" in bad.stderr
