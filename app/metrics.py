"""Metrics from the semantic layer: dbt's semantic models, queried through MetricFlow.

The metrics (revenue, purchases, buyers, customers, churn risk, expected churners, revenue
at risk, ...) are defined once, in ``dbt_project/models/marts/semantic/``; ``dbt parse``
writes them to ``semantic_manifest.json``. MetricFlow turns a request ("revenue by month
and channel") into SQL for the warehouse's dialect, and this module runs that SQL where
readers read: the published snapshot for a DuckDB warehouse (read-only, so a run never
waits for it), the marts themselves on Postgres.

We call MetricFlow's engine, not its ``mf`` command: ``mf`` asks PyPI for a newer version
on every call, and nothing we ship fetches from outside.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from customer720.settings import Settings, get_settings

log = logging.getLogger(__name__)
# MetricFlow logs every plan step at INFO; its warnings and errors still show.
for _name in ("metricflow", "metricflow_semantics", "dbt_metricflow"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class MetricsUnavailable(RuntimeError):
    """The semantic manifest or the data to query is missing: the message says what to run."""


def manifest_path(settings: Settings) -> Path:
    return settings.local_dir / "dbt" / "target" / "semantic_manifest.json"


def semantic_manifest(settings: Settings | None = None) -> Any:
    """The project's semantic manifest, written by any dbt parse or build (parsed here if missing)."""
    from metricflow_semantics.model.dbt_manifest_parser import (
        parse_manifest_from_dbt_generated_manifest,
    )

    settings = settings or get_settings()
    path = manifest_path(settings)
    if not path.exists():
        from customer720.dbt import run_dbt

        run_dbt("parse")  # with the settings' environment: dbt writes to manifest_path()
    return parse_manifest_from_dbt_generated_manifest(manifest_json_string=path.read_text())


def validate(manifest: Any) -> list[str]:
    """MetricFlow's semantic validation: the blocking issues, as readable lines (none = valid)."""
    from metricflow_semantic_interfaces.validations.semantic_manifest_validator import (
        SemanticManifestValidator,
    )

    result = SemanticManifestValidator(max_workers=1).validate_semantic_manifest(manifest)
    return [str(issue.as_readable_str()) for issue in result.errors + result.future_errors]


class _SqlClient:
    """MetricFlow's ``SqlClient`` protocol over one DB-API connection (DuckDB or Postgres)."""

    def __init__(self, execute: Any, engine: str) -> None:
        from metricflow.protocols.sql_client import SqlEngine
        from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer
        from metricflow.sql.render.postgres import PostgresSQLSqlPlanRenderer

        self._execute = execute
        self._engine = SqlEngine.DUCKDB if engine == "duckdb" else SqlEngine.POSTGRES
        self._renderer = (
            DuckDbSqlPlanRenderer() if engine == "duckdb" else PostgresSQLSqlPlanRenderer()
        )

    @property
    def sql_engine_type(self) -> Any:
        return self._engine

    @property
    def sql_plan_renderer(self) -> Any:
        return self._renderer

    def query(self, stmt: str, sql_bind_parameter_set: Any = None) -> Any:
        from metricflow.data_table.mf_table import MetricFlowDataTable

        columns, rows = self._execute(stmt, _binds(sql_bind_parameter_set))
        return MetricFlowDataTable.create_from_rows(column_names=columns, rows=rows)

    def execute(self, stmt: str, sql_bind_parameter_set: Any = None) -> None:
        self._execute(stmt, _binds(sql_bind_parameter_set))

    def dry_run(self, stmt: str, sql_bind_parameter_set: Any = None) -> None:
        self._execute(f"explain {stmt}", _binds(sql_bind_parameter_set))

    def close(self) -> None:
        pass

    def render_bind_parameter_key(self, bind_parameter_key: str) -> str:
        return f"${bind_parameter_key}"


def _binds(parameter_set: Any) -> dict[str, Any]:
    if parameter_set is None:
        return {}
    return {item.key: item.value.union_value() for item in parameter_set.param_items}


@dataclass(frozen=True)
class MetricResult:
    """A metric query's answer: the rows, the SQL that produced them, and when it ran."""

    frame: pd.DataFrame
    sql: str
    seconds: float


def _duckdb_executor(snapshot: Path, database: str) -> Any:
    """Run SQL on the published snapshot, attached read-only under the warehouse's catalog
    name (the semantic manifest names relations ``"<catalog>"."marts"."<table>"``). Each
    statement opens the file anew: a publish swaps in a new file, and a connection kept
    open would go on reading the old one."""

    def execute(sql: str, binds: dict[str, Any]) -> tuple[list[str], list[tuple]]:
        if not snapshot.exists():
            raise MetricsUnavailable(
                f"no published snapshot at {snapshot}: run `make run` (or `python -m activate publish`)"
            )
        with duckdb.connect() as con:
            con.execute(f"attach '{snapshot}' as \"{database}\" (read_only)")
            cursor = con.execute(sql, binds or None)
            if cursor.description is None:
                return [], []
            return [d[0] for d in cursor.description], cursor.fetchall()

    return execute


def _postgres_executor(settings: Settings) -> Any:
    from customer720.warehouse import pg_engine

    engine = pg_engine(settings)

    def execute(sql: str, binds: dict[str, Any]) -> tuple[list[str], list[tuple]]:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(sql, binds or ())
            if not result.returns_rows:
                return [], []
            return list(result.keys()), [tuple(r) for r in result.fetchall()]

    return execute


@functools.cache
def _engine(settings: Settings, manifest_mtime: float) -> Any:
    from metricflow.engine.metricflow_engine import MetricFlowEngine
    from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

    manifest = semantic_manifest(settings)
    if settings.warehouse_is_postgres:
        execute = _postgres_executor(settings)
        client = _SqlClient(execute, "postgres")
    else:
        database = manifest.semantic_models[0].node_relation.database
        client = _SqlClient(_duckdb_executor(settings.published, database), "duckdb")
    return MetricFlowEngine(
        semantic_manifest_lookup=SemanticManifestLookup(manifest), sql_client=client
    )


def engine(settings: Settings | None = None) -> Any:
    """A MetricFlow engine on the readers' copy (one per manifest version and process)."""
    settings = settings or get_settings()
    path = manifest_path(settings)
    return _engine(settings, path.stat().st_mtime if path.exists() else 0.0)


def query(
    metrics: Sequence[str],
    group_by: Sequence[str] = (),
    where: Sequence[str] = (),
    order_by: Sequence[str] = (),
    limit: int | None = None,
    settings: Settings | None = None,
) -> MetricResult:
    """Metrics by dimensions, e.g. ``query(["revenue"], ["metric_time__month"])``.

    Group-by names are MetricFlow's: ``metric_time__<grain>``, ``<entity>__<dimension>``
    (``customer__persona``, ``order__channel``). ``where`` filters are MetricFlow
    templates, e.g. ``"{{ Dimension('customer__country') }} = 'DE'"``.
    """
    from metricflow.engine.metricflow_engine import MetricFlowQueryRequest

    mf = engine(settings)
    request = MetricFlowQueryRequest.create(
        metric_names=list(metrics),
        group_by_names=list(group_by),
        where_constraints=list(where),
        order_by_names=list(order_by),
        limit=limit,
    )
    started = time.perf_counter()
    try:
        result = mf.query(request)
    except Exception as err:  # MetricFlow's errors name the metric or dimension at fault
        raise MetricsUnavailable(f"metrics query failed: {err}") from err
    seconds = time.perf_counter() - started
    table = result.result_df
    frame = pd.DataFrame(list(table.rows), columns=list(table.column_names))
    sql = result.sql or ""
    log.info(
        "metrics %s by %s: %d rows in %.2f s", ",".join(metrics), group_by, len(frame), seconds
    )
    return MetricResult(frame=frame, sql=sql, seconds=seconds)


def catalogue(settings: Settings | None = None) -> pd.DataFrame:
    """Every metric with its label, type and description (for ``--list`` and the app)."""
    manifest = semantic_manifest(settings)
    return pd.DataFrame(
        [
            {
                "metric": m.name,
                "label": m.label or m.name,
                "type": str(m.type.value),
                "description": " ".join((m.description or "").split()),
            }
            for m in manifest.metrics
        ]
    )


# The metrics page of the app: (title, metrics, group by, order by, rows kept).
OVERVIEW = (
    (
        "Today",
        ["customers", "scored_customers", "churn_risk", "expected_churners", "revenue_at_risk"],
        [],
        [],
        None,
    ),
    (
        "By month",
        ["revenue", "purchases", "buyers"],
        ["metric_time__month"],
        ["-metric_time__month"],
        12,
    ),
    (
        "By persona",
        ["customers", "churn_risk", "expected_churners", "revenue_at_risk"],
        ["customer__persona"],
        ["-revenue_at_risk"],
        None,
    ),
    (
        "By journey stage",
        ["customers", "churn_risk", "revenue_at_risk"],
        ["customer__journey_stage"],
        ["-customers"],
        None,
    ),
)


def overview(settings: Settings | None = None) -> dict[str, Any]:
    """The app's metrics page: a few standard questions and the metric catalogue. Each
    table keeps the SQL MetricFlow wrote, so an analyst can take it to their BI tool."""
    settings = settings or get_settings()
    tables = []
    for title, names, group_by, order_by, limit in OVERVIEW:
        result = query(names, group_by, order_by=order_by, limit=limit, settings=settings)
        frame = result.frame.astype(object).where(result.frame.notna(), None)
        tables.append(
            {
                "title": title,
                "columns": list(frame.columns),
                "rows": frame.to_dict("records"),
                "sql": result.sql,
            }
        )
    return {"tables": tables, "catalogue": catalogue(settings).to_dict("records")}
