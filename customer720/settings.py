"""The one settings module: every path and connection, from ``C720_*`` environment variables.

Defaults put all local state under ``<project>/.local/`` (gitignored), so a fresh clone
works with no configuration. Read settings with ``get_settings()``; it re-reads the
environment each call, so tests can point a stage elsewhere with ``monkeypatch.setenv``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# DuckDB allows one writing process: every warehouse writer queues in this Airflow pool of 1.
WAREHOUSE_POOL = "warehouse_writer"

# Telemetry off in every tool we run; set before any of them is imported by a stage.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "GX_ANALYTICS_ENABLED": "False",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "SCARF_ANALYTICS": "false",
}


@dataclass(frozen=True)
class Settings:
    local_dir: Path
    sources_dir: Path
    crm_url: str
    events_dir: Path
    truth_dir: Path
    warehouse: str
    published: Path
    airflow_home: Path
    model_dir: Path
    reports_dir: Path
    dbt_project_dir: Path
    quarantine_max_rate: float
    churn_horizon_days: int
    cutoff_step_days: int
    cutoff_count: int
    task_retries: int

    @property
    def warehouse_is_postgres(self) -> bool:
        return self.warehouse.startswith(("postgres://", "postgresql://", "postgresql+"))

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file (only meaningful when the warehouse is not Postgres)."""
        if self.warehouse_is_postgres:
            raise ValueError("C720_WAREHOUSE points at Postgres; there is no DuckDB file")
        return Path(self.warehouse)

    @property
    def dbt_target(self) -> str:
        return "postgres" if self.warehouse_is_postgres else "duckdb"

    def tool_env(self) -> dict[str, str]:
        """Environment for dbt / Airflow / child processes: settings made explicit."""
        env = dict(TELEMETRY_OFF)
        env.update(
            C720_LOCAL_DIR=str(self.local_dir),
            C720_SOURCES_DIR=str(self.sources_dir),
            C720_CRM_URL=self.crm_url,
            C720_EVENTS_DIR=str(self.events_dir),
            C720_WAREHOUSE=self.warehouse,
            C720_PUBLISHED=str(self.published),
            C720_MODEL_DIR=str(self.model_dir),
            C720_REPORTS_DIR=str(self.reports_dir),
            C720_CHURN_HORIZON_DAYS=str(self.churn_horizon_days),
            C720_CUTOFF_STEP_DAYS=str(self.cutoff_step_days),
            C720_CUTOFF_COUNT=str(self.cutoff_count),
            DBT_PROFILES_DIR=str(self.dbt_project_dir),
            DBT_PROJECT_DIR=str(self.dbt_project_dir),
            DBT_TARGET=self.dbt_target,
            # dbt's artefacts are local state, not source: keep them out of the repo.
            DBT_TARGET_PATH=str(self.local_dir / "dbt" / "target"),
            DBT_LOG_PATH=str(self.local_dir / "dbt" / "logs"),
            AIRFLOW_HOME=str(self.airflow_home),
            AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            # 2 cores: a few parallel tasks at most; DuckDB writers queue in a pool of 1.
            AIRFLOW__CORE__PARALLELISM="4",
            AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG="2",
            AIRFLOW__COSMOS__CACHE_DIR=str(self.local_dir / "cosmos_cache"),
        )
        if self.warehouse_is_postgres:
            url = make_url(self.warehouse)
            env.update(
                DBT_PG_HOST=url.host or "127.0.0.1",
                DBT_PG_PORT=str(url.port or 5432),
                DBT_PG_USER=url.username or "postgres",
                DBT_PG_PASSWORD=url.password or "",
                DBT_PG_DBNAME=url.database or "postgres",
            )
        else:
            env["DBT_DUCKDB_PATH"] = self.warehouse
        return env


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def get_settings() -> Settings:
    local = _path("C720_LOCAL_DIR", PROJECT_ROOT / ".local")
    sources = _path("C720_SOURCES_DIR", local / "sources")
    return Settings(
        local_dir=local,
        sources_dir=sources,
        crm_url=os.environ.get("C720_CRM_URL", f"sqlite:///{sources / 'crm.sqlite'}"),
        events_dir=_path("C720_EVENTS_DIR", sources / "events"),
        truth_dir=_path("C720_TRUTH_DIR", sources / "truth"),
        warehouse=os.environ.get("C720_WAREHOUSE", str(local / "warehouse.duckdb")),
        published=_path("C720_PUBLISHED", local / "published.duckdb"),
        airflow_home=_path("AIRFLOW_HOME", local / "airflow"),
        model_dir=_path("C720_MODEL_DIR", local / "models"),
        reports_dir=_path("C720_REPORTS_DIR", local / "reports"),
        dbt_project_dir=PROJECT_ROOT / "dbt_project",
        quarantine_max_rate=float(os.environ.get("C720_QUARANTINE_MAX_RATE", "0.05")),
        churn_horizon_days=int(os.environ.get("C720_CHURN_HORIZON_DAYS", "90")),
        # The training cutoffs of ml.customer_features: as_of - k * step, k = 0..count
        # (dbt vars cutoff_step_days / cutoff_count). Longer horizons want longer steps.
        cutoff_step_days=int(os.environ.get("C720_CUTOFF_STEP_DAYS", "30")),
        cutoff_count=int(os.environ.get("C720_CUTOFF_COUNT", "12")),
        # Airflow retries per task; the one-shot `make run` sets 0 so a failure shows at once.
        task_retries=int(os.environ.get("C720_TASK_RETRIES", "2")),
    )


def apply_tool_env() -> Settings:
    """Export the settings (and telemetry-off flags) into this process's environment."""
    settings = get_settings()
    for key, value in settings.tool_env().items():
        os.environ.setdefault(key, value)
    return settings
