"""Run dbt in-process with the project's settings (the transform stage's entry point).

The pipeline's two builds are named selectors in ``dbt_project/selectors.yml`` (``marts``,
``score_marts``); ``selection()`` resolves a name to dbt's ``--select`` / ``--exclude``.
Each is one ``dbt build`` (one Airflow task: ``orchestrate/dbt_tasks.py``).

Every build logs one line per node (status, seconds) and, when it fails, names each failed
model or test and the commands that re-run it (``DbtNodeFailure``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from customer720.settings import PROJECT_ROOT, Settings, apply_tool_env

log = logging.getLogger(__name__)


class DbtError(RuntimeError):
    """dbt failed; the message names the failing models or tests."""


class DbtNodeFailure(DbtError):
    """Models or tests failed on the data or the SQL (not a lock or a lost connection):
    running the same build again would fail the same way. ``failed`` names them."""

    def __init__(self, message: str, failed: list[dict[str, Any]]):
        super().__init__(message)
        self.failed = failed


SELECTORS_FILE = PROJECT_ROOT / "dbt_project" / "selectors.yml"
# Criteria that together select every node: dbt's default without --select.
EVERYTHING = ("fqn:*", "source:*")


def _criterion(item: dict[str, Any]) -> str:
    return f"{item['method']}:{item['value']}"


@functools.cache
def _selections(path: Path = SELECTORS_FILE) -> dict[str, tuple[list[str], list[str]]]:
    import yaml

    selections = {}
    for selector in yaml.safe_load(path.read_text())["selectors"]:
        definition = selector["definition"]
        items = definition["union"] if "union" in definition else [definition]
        select, exclude = [], []
        for item in items:
            if "exclude" in item:
                exclude += [_criterion(e) for e in item["exclude"]]
            elif _criterion(item) not in EVERYTHING:
                select.append(_criterion(item))
        selections[selector["name"]] = (select, exclude)
    return selections


def selection(selector: str) -> tuple[list[str], list[str]]:
    """(select, exclude) of a selector in ``dbt_project/selectors.yml``: a union of
    ``method: tag|fqn|path`` criteria and one ``exclude`` list is all this reads."""
    try:
        select, exclude = _selections()[selector]
    except KeyError:
        raise KeyError(f"no selector {selector!r} in {SELECTORS_FILE}") from None
    return list(select), list(exclude)


# The analysis date reaches dbt as this environment variable (read by macros/as_of.sql), not
# as a var: dbt re-parses the whole project when --vars change (10-28 s a build), but only
# the files that read an env var when its value changes, so a new day keeps partial parsing.
AS_OF_ENV = "DBT_AS_OF"

# Errors a second try can fix: another process holds DuckDB's file, a connection dropped.
TRANSIENT = ("could not set lock", "conflicting lock", "connection", "timeout", "timed out")


def project_args(settings: Settings) -> list[str]:
    """dbt's arguments naming our project, its profile and the warehouse's target."""
    return [
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target",
        settings.dbt_target,
    ]


def project_vars(settings: Settings) -> dict[str, Any]:
    """dbt vars every invocation passes: the churn horizon and the feature cutoff grid are
    project settings (C720_CHURN_HORIZON_DAYS, C720_CUTOFF_*), not only dbt defaults. They
    stay the same from day to day (null = the grid is derived from the data in SQL,
    macros/cutoff_grid.sql), so dbt's partial parsing keeps working."""
    return {
        "churn_horizon_days": settings.churn_horizon_days,
        "cutoff_step_days": settings.cutoff_step_days,
        "cutoff_count": settings.cutoff_count,
    }


def rerun_commands(
    failed: list[dict[str, Any]],
    variables: dict[str, Any],
    exclude: list[str],
    settings: Settings,
    as_of: date | None = None,
) -> list[str]:
    """The dbt command lines that re-run what failed, with this build's settings: a build
    of each failed model (or the model of a failed test) and what depends on it, and
    ``dbt retry`` (the failed and skipped nodes of this invocation, from its run_results).
    The warehouse, dbt's target folder and the analysis date (``DBT_AS_OF``) are passed as
    ``run_dbt`` passes them; a Postgres password stays in ``DBT_PG_PASSWORD``, never in a log."""
    import shlex

    env = {
        k: v
        for k, v in settings.tool_env().items()
        if (k.startswith("DBT_") or k == "PGOPTIONS")
        and k not in ("DBT_PG_PASSWORD", "DBT_PROFILES_DIR")
    }
    if as_of is not None:
        env[AS_OF_ENV] = as_of.isoformat()
    prefix = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    dbt = shlex.quote(str(Path(sys.executable).with_name("dbt")))
    common = project_args(settings)
    roots = sorted({n.get("model") or n["name"] for n in failed})
    build = ["build", "--select", *(f"{r}+" for r in roots)]
    build += ["--exclude", *exclude] if exclude else []
    build += [*common, "--vars", json.dumps(variables)]
    return [
        f"{prefix} {dbt} {shlex.join(build)}",
        f"{prefix} {dbt} {shlex.join(['retry', *common])}",
    ]


def _node_result(node: Any) -> dict[str, Any]:
    """One executed node: name, resource type, status, seconds, message, and for a test
    the model it is attached to."""
    attached = getattr(node.node, "attached_node", None)
    return {
        "name": getattr(node.node, "name", "?"),
        "type": str(getattr(node.node, "resource_type", "?")),
        "status": str(node.status),
        "seconds": round(float(getattr(node, "execution_time", 0.0) or 0.0), 2),
        "message": node.message,
        "model": attached.rsplit(".", 1)[-1] if attached else None,
    }


def _release_dbt() -> None:
    """Drop dbt's adapters (and the manifest they hold) once an invocation is done.

    dbt's manifest and adapters each hold a lock of the *spawn* multiprocessing context: a
    named semaphore, unlinked by a finalizer when the object is collected or at interpreter
    exit. An Airflow task process ends with ``os._exit`` after clearing the exit handlers
    it inherited from the scheduler (multiprocessing's among them), so without this the
    semaphores outlive the task and multiprocessing's resource tracker ends every dbt
    task's log with an ERROR "leaked semaphore objects" warning. The next invocation
    registers its adapters afresh, as it does anyway."""
    import gc

    from dbt.adapters.factory import reset_adapters

    reset_adapters()  # also closes their connections
    gc.collect()  # the manifest and nodes reference each other: free them now


def run_dbt(
    command: str,
    *,
    as_of: date | None = None,
    selector: str | None = None,
    select: str | None = None,
    exclude: str | None = None,
    extra_vars: dict[str, Any] | None = None,
    args: list[str] | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Invoke ``dbt <command>`` against the configured warehouse; raise DbtError on failure.

    ``selector`` names a selector of ``dbt_project/selectors.yml`` (see ``selection``);
    ``select`` / ``exclude`` are dbt's own criteria, for one-off builds.
    ``as_of`` (default: the latest order / web event date in the data) is exported as
    ``DBT_AS_OF`` for this invocation (see ``AS_OF_ENV``).
    Logs one line per executed node and returns one small dict per node (name, type,
    status, seconds, message). Failed models or tests raise ``DbtNodeFailure`` (unless
    their errors look transient: a lock, a connection), naming each one and the command
    lines that re-run them.
    """
    settings = settings or apply_tool_env()
    from dbt.cli.main import dbtRunner

    cli = [command, *project_args(settings)]
    variables = {**project_vars(settings), **(extra_vars or {})}
    if as_of is not None:
        os.environ[AS_OF_ENV] = as_of.isoformat()
    else:
        os.environ.pop(AS_OF_ENV, None)
    if variables:
        cli += ["--vars", json.dumps(variables)]
    selects, excludes = selection(selector) if selector else ([], [])
    selects += [select] if select else []
    excludes += [exclude] if exclude else []
    if selects:
        cli += ["--select", *selects]
    if excludes:
        cli += ["--exclude", *excludes]
    cli += args or []
    log.info("%sdbt %s", f"{AS_OF_ENV}={as_of.isoformat()} " if as_of else "", " ".join(cli))
    try:
        result = dbtRunner().invoke(cli)
    finally:
        _release_dbt()
    results = getattr(result.result, "results", None) or []
    nodes = [_node_result(node) for node in results]
    if nodes:
        log.info(
            "dbt %s: %d nodes, %.1f s of dbt work:\n%s",
            command,
            len(nodes),
            sum(n["seconds"] for n in nodes),
            "\n".join(
                f"  {n['status'].upper():<7} {n['type']:<9} {n['name']}  {n['seconds']:.2f} s"
                for n in nodes
            ),
        )
    if not result.success:
        failed = [n for n in nodes if n["status"] in ("error", "fail", "runtime error")]
        detail = (
            "\n  ".join(
                f"{n['type']} {n['name']}"
                + (f" (on {n['model']})" if n["model"] else "")
                + f": {n['status']} {n['message'] or ''}".rstrip()
                for n in failed
            )
            if failed
            else str(result.exception or "see the dbt log")
        )
        message = f"dbt {command} failed:\n  {detail}\nLog: {settings.local_dir / 'dbt' / 'logs'}"
        transient = any(
            word in str(n["message"] or "").lower() for n in failed for word in TRANSIENT
        )
        if failed and not transient:
            commands = rerun_commands(failed, variables, excludes, settings, as_of)
            message += (
                "\nRe-run what failed and what depends on it, after fixing the cause:\n  "
                + commands[0]
                + "\nor continue this dbt invocation (failed and skipped nodes):\n  "
                + commands[1]
                + "\n(or clear the Airflow task: a build is idempotent for its date)"
            )
            raise DbtNodeFailure(message, failed)
        raise DbtError(message)
    return nodes
