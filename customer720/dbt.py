"""Run dbt in-process with the project's settings (the transform stage's entry point).

The pipeline's two builds are named selectors in ``dbt_project/selectors.yml`` (``marts``,
``score_marts``); ``selection()`` resolves a name to dbt's ``--select`` / ``--exclude``, for
``run_dbt(selector=...)`` and the Cosmos task groups alike.
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

from customer720.settings import PROJECT_ROOT, Settings, apply_tool_env

log = logging.getLogger(__name__)


class DbtError(RuntimeError):
    """dbt failed; the message names the failing models or tests."""


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
        "churn_horizon_days": settings.churn_horizon_days,
        "cutoff_anchor_date": settings.cutoff_anchor_date,
        **(extra_vars or {}),
    }
    if as_of is not None:
        variables["as_of"] = as_of.isoformat()
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
