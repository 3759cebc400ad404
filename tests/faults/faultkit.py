"""Shared pieces of the fault tests: a small company, the stages for a date in a child.

The company is 300 customers x 60 days (seed 11). Its churn horizon is shortened to 14 days
(cutoffs every 7 days, 5 of them) so that 60 days of history give the model labelled
cutoffs to train on. Every pipeline run happens in a child process
(``tests/activate/pipeline_stages.py``), so the test process never holds the warehouse file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from activate.writeback import SCORES_TABLE  # noqa: E402
from bench.backfill_twice import RUN_TIME_COLUMNS  # noqa: E402

CUSTOMERS, DAYS, SEED = 300, 60, 11
START = date(2024, 1, 1)
LAST = START + timedelta(days=DAYS - 1)  # the date D the tests run
RUNNER = ROOT / "tests" / "activate" / "pipeline_stages.py"
SMALL_COMPANY_ENV = {
    "C720_QUARANTINE_MAX_RATE": "0.2",
    "C720_ML_NUM_THREADS": "2",
    "C720_CHURN_HORIZON_DAYS": "14",
    "C720_CUTOFF_STEP_DAYS": "7",
    "C720_CUTOFF_COUNT": "5",
}


def child_env(local: Path) -> dict[str, str]:
    """The environment of a run on ``local``: nothing of the caller's C720_/Airflow setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C720_", "AIRFLOW"))}
    return env | SMALL_COMPANY_ENV | {"C720_LOCAL_DIR": str(local), "PYTHONUNBUFFERED": "1"}


def simulate(local: Path, log: Path, *extra: str) -> Path:
    """The small company into ``local/sources``; ``extra``: more simulator options."""
    sources = local / "sources"
    cmd = [sys.executable, "-m", "simulator", "--customers", str(CUSTOMERS), "--days",
           str(DAYS), "--seed", str(SEED), "--start", START.isoformat(), "--out",
           str(sources), "-q", *extra]  # fmt: skip
    _check(subprocess.run(cmd, env=child_env(local), stdout=log.open("w"),
                          stderr=subprocess.STDOUT, check=False).returncode, log)  # fmt: skip
    return sources


def _check(code: int, log: Path) -> None:
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        raise AssertionError(f"child failed ({code}), {log}:\n{tail}")


def run_date(local: Path, as_of: date, log: Path, *extra: str, killed: bool = False) -> str:
    """The writing stages for ``as_of`` on ``local``, to the end; returns the child's output.
    ``killed``: the child must die of SIGKILL (``--kill-in``), not finish or fail."""
    cmd = [sys.executable, str(RUNNER), "--date", as_of.isoformat(), *extra]
    with log.open("w") as out:
        code = subprocess.run(
            cmd, env=child_env(local), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, check=False
        ).returncode
    if killed:
        if code != -signal.SIGKILL:
            raise AssertionError(f"child was not killed (exit {code}), {log}")
    else:
        _check(code, log)
    return log.read_text()


# --- the state of a run, kept and compared -------------------------------------------------

# What a user reads: the warehouse's marts and ML tables, the published snapshot's marts, and
# the CRM writeback table (in the CRM database). Raw and staging are the pipeline's own.
WAREHOUSE_SCHEMAS = ("marts", "ml")
STATE_FILES = ("warehouse.duckdb", "published.duckdb", "sources/crm.sqlite", "models")


def save_state(local: Path, to: Path) -> Path:
    """Copy what the writing stages change (warehouse, snapshot, CRM database, models) to
    ``to``: cheap, the event files stay where they are (no stage writes them)."""
    shutil.rmtree(to, ignore_errors=True)
    to.mkdir(parents=True)
    for name in STATE_FILES:
        _copy(local, to, name)
    return to


def _copy(source_dir: Path, target_dir: Path, name: str) -> None:
    """A file with its companions (DuckDB's ``.wal``: a writer in this process may not have
    checkpointed yet), or a folder."""
    source = source_dir / name
    if source.is_dir():
        shutil.copytree(source, target_dir / name)
        return
    for path in [source, *source.parent.glob(source.name + "[.-]*")]:
        if path.exists():
            (target_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target_dir / name.replace(source.name, path.name))


def restore_state(saved: Path, local: Path) -> None:
    """Put a ``save_state`` copy back over ``local`` (what was not saved is removed)."""
    for name in STATE_FILES:
        target = local / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        for leftover in target.parent.glob(target.name + "[.-]*"):  # .wal, .tmp, -journal
            leftover.unlink()
        _copy(saved, local, name)


def _duckdb_tables(con: duckdb.DuckDBPyConnection, db: str, schemas: tuple[str, ...]) -> dict:
    rows = con.execute(
        "select schema_name, table_name, list(column_name order by column_index) "
        "from duckdb_columns() where database_name = ? group by all",
        [db],
    ).fetchall()
    return {
        f"{schema}.{table}": [c for c in columns if c not in RUN_TIME_COLUMNS]
        for schema, table, columns in rows
        if schema in schemas
    }


def differences(
    first: Path,
    second: Path,
    through: date | None = None,
    parts: tuple[str, ...] = ("warehouse", "published", "crm"),
) -> dict[str, str]:
    """Every user-facing table of two local dirs compared row for row (run-time stamps left
    out): {table: what differs}. With ``through``, a table with an ``as_of_date`` column is
    compared on its rows as of that date or before (the history of later runs is not the
    first run's to have). ``parts``: the warehouse's marts and ML tables, the published
    snapshot's marts, the CRM writeback table."""
    out: dict[str, str] = {}
    con = duckdb.connect()
    try:
        for name, schemas in (("warehouse", WAREHOUSE_SCHEMAS), ("published", ("marts",))):
            a, b = first / f"{name}.duckdb", second / f"{name}.duckdb"
            if name not in parts or (not a.exists() and not b.exists()):
                continue
            if not (a.exists() and b.exists()):
                out[name] = f"{name}.duckdb only in {first if a.exists() else second}"
                continue
            con.execute(f"attach '{a}' as a (read_only)")
            con.execute(f"attach '{b}' as b (read_only)")
            try:
                tables_a = _duckdb_tables(con, "a", schemas)
                tables_b = _duckdb_tables(con, "b", schemas)
                for table in sorted(set(tables_a) | set(tables_b)):
                    key = f"{name} {table}"
                    if tables_a.get(table) != tables_b.get(table):
                        out[key] = f"columns {tables_a.get(table)} != {tables_b.get(table)}"
                        continue
                    out.update(
                        {key: d} if (d := _diff(con, table, tables_a[table], through)) else {}
                    )
            finally:
                con.execute("detach a")
                con.execute("detach b")
    finally:
        con.close()
    if "crm" not in parts:
        return out
    crm = _crm_rows(first / "sources" / "crm.sqlite"), _crm_rows(second / "sources" / "crm.sqlite")
    if crm[0] != crm[1]:
        only = sorted(set(crm[0]) ^ set(crm[1]))
        out[f"crm {SCORES_TABLE}"] = f"{len(crm[0])} vs {len(crm[1])} rows, e.g. {only[:3]}"
    return out


def _diff(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], through) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    where = f" where as_of_date <= date '{through}'" if through and "as_of_date" in columns else ""
    a, b = f"select {cols} from a.{table}{where}", f"select {cols} from b.{table}{where}"
    only_a = con.execute(f"select * from ({a} except all {b}) limit 3").fetchall()
    only_b = con.execute(f"select * from ({b} except all {a}) limit 3").fetchall()
    if not only_a and not only_b:
        return ""
    counts = [con.execute(f"select count(*) from ({q})").fetchone()[0] for q in (a, b)]
    return f"{counts[0]} vs {counts[1]} rows; only first {only_a}; only second {only_b}"


def _crm_rows(path: Path) -> list[tuple]:
    if not path.exists():
        return []
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as con:
            if not sa.inspect(con).has_table(SCORES_TABLE):
                return []
            columns = [
                c["name"]
                for c in sa.inspect(con).get_columns(SCORES_TABLE)
                if c["name"] not in RUN_TIME_COLUMNS
            ]
            query = f"select {', '.join(columns)} from {SCORES_TABLE}"
            return sorted(tuple(r) for r in con.execute(sa.text(query)).fetchall())
    finally:
        engine.dispose()
