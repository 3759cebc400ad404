"""Run dbt in-process with the project's settings (the transform stage's entry point)."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from customer720.settings import Settings, apply_tool_env

log = logging.getLogger(__name__)


class DbtError(RuntimeError):
    """dbt failed; the message names the failing models or tests."""


def run_dbt(
    command: str,
    *,
    as_of: date | None = None,
    select: str | None = None,
    exclude: str | None = None,
    extra_vars: dict[str, Any] | None = None,
    args: list[str] | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Invoke ``dbt <command>`` against the configured warehouse; raise DbtError on failure.

    Returns one small dict per executed node (name, status, seconds) for summaries.
    """
    settings = settings or apply_tool_env()
    from dbt.cli.main import dbtRunner

    cli = [
        command,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target",
        settings.dbt_target,
    ]
    # The feature cutoff grid is a project setting (C720_CUTOFF_*), not only a dbt default.
    variables = {
        "cutoff_step_days": settings.cutoff_step_days,
        "cutoff_count": settings.cutoff_count,
        **(extra_vars or {}),
    }
    if as_of is not None:
        variables["as_of"] = as_of.isoformat()
    if variables:
        cli += ["--vars", json.dumps(variables)]
    if select:
        cli += ["--select", select]
    if exclude:
        cli += ["--exclude", exclude]
    cli += args or []
    log.info("dbt %s", " ".join(cli))
    result = dbtRunner().invoke(cli)
    nodes: list[dict[str, Any]] = []
    results = getattr(result.result, "results", None) or []
    for node in results:
        nodes.append(
            {
                "name": getattr(node.node, "name", "?"),
                "status": str(node.status),
                "seconds": round(float(getattr(node, "execution_time", 0.0) or 0.0), 2),
                "message": node.message,
            }
        )
    if not result.success:
        failed = [
            f"{n['name']}: {n['status']} {n['message'] or ''}".strip()
            for n in nodes
            if n["status"] in ("error", "fail", "runtime error")
        ]
        detail = "\n  ".join(failed) if failed else str(result.exception or "see the dbt log")
        raise DbtError(
            f"dbt {command} failed:\n  {detail}\nLog: {settings.local_dir / 'dbt' / 'logs'}"
        )
    return nodes
