"""The one settings module: every ``C720_*`` environment variable is declared and read here.

Defaults put all local state under ``<project>/.local/`` (gitignored), so a fresh clone
works with no configuration. Read settings with ``get_settings()``; it re-reads the
environment each call, so tests can point a stage elsewhere with ``monkeypatch.setenv``.
``VARIABLES`` lists every variable with its default and meaning: the README's settings
table is generated from it (``python -m customer720.settings``), and a test checks that
no other module reads a ``C720_*`` variable.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# DuckDB allows one writing process: every warehouse writer queues in this Airflow pool of 1.
WAREHOUSE_POOL = "warehouse_writer"

# libpq options of every Postgres session we open (PGOPTIONS; Settings.tool_env says why).
POSTGRES_SESSION_OPTIONS = "-c jit=off"

# Telemetry off in every tool we run; set before any of them is imported by a stage.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "GX_ANALYTICS_ENABLED": "False",
    "SCARF_ANALYTICS": "false",
}


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # as shown to users; "–" for none
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    # where things are
    Variable("C720_LOCAL_DIR", "`.local`", "root of all local state"),
    Variable(
        "C720_SOURCES_DIR", "`.local/sources`", "the demo company's sources (simulator output)"
    ),
    Variable(
        "C720_CRM_URL",
        "`sqlite:///.local/sources/crm.sqlite`",
        "the CRM (source and writeback target): a SQLAlchemy URL or a folder of CSV / Parquet exports",
    ),
    Variable("C720_EVENTS_DIR", "`.local/sources/events`", "web/app event files"),
    Variable(
        "C720_NO_EVENTS",
        "`0`",
        "`1`: this company has no web/app events (a missing events folder is then no error; `make run` warns)",
    ),
    Variable(
        "C720_TRUTH_DIR",
        "`.local/sources/truth`",
        "the simulator's ground truth (oracle figures in reports; simulated companies only)",
    ),
    Variable(
        "C720_WAREHOUSE",
        "`.local/warehouse.duckdb`",
        'a DuckDB file, a `postgresql://` URL (ingest, dbt and ML then use Postgres), or Apache Spark: `spark` (a local session, `local[*]`) or a master URL `spark://host:port` (README "Scale out on Spark")',
    ),
    Variable(
        "C720_SPARK_DIR",
        "`.local/spark`",
        "Spark warehouse only: its tables (`spark.sql.warehouse.dir`), metastore and the raw layer's DuckDB store and Parquet hand-off; a shared filesystem path (or URI) for a real cluster",
    ),
    Variable(
        "C720_SPARK_CONF",
        "–",
        "Spark warehouse only: extra Spark settings, `key=value` separated by `;` (e.g. `spark.executor.memory=4g;spark.sql.shuffle.partitions=64`)",
    ),
    Variable("C720_PUBLISHED", "`.local/published.duckdb`", "the snapshot readers use"),
    Variable("C720_MODEL_DIR", "`.local/models`", "model registry"),
    Variable(
        "C720_DUCKDB_MEMORY_LIMIT",
        "`4GB`",
        "DuckDB `memory_limit` for dbt builds: above it DuckDB spills to disk, next to the warehouse file (`<warehouse>.tmp`), which keeps a build under 6 GiB RSS",
    ),
    Variable("C720_REPORTS_DIR", "`.local/reports`", "reports, data docs, run summaries"),
    # ingest and quality
    Variable("C720_QUARANTINE_MAX_RATE", "`0.05`", "share of bad records that fails a source"),
    Variable(
        "C720_ORPHAN_WAIT_DAYS",
        "`7`",
        "days a CRM row naming an unknown parent (an order of a contact not yet sent) is read again at each load; after that it stays in `raw.quarantine` and no longer holds the table's watermark back",
    ),
    # churn
    Variable("C720_CHURN_HORIZON_DAYS", "`90`", "churn = no purchase within this many days"),
    Variable(
        "C720_CHURN_LABEL",
        "`no_purchase`",
        "`no_purchase`, or `no_purchase_no_engagement` (churn also needs no session and no email open/click in the window)",
    ),
    # lifetime value
    Variable(
        "C720_CLV_HORIZON_DAYS",
        "`365`",
        "CLV = expected net revenue of a customer in the next this many days (revenue at risk = churn probability × CLV)",
    ),
    Variable(
        "C720_CLV_LABEL_DAYS",
        "derived",
        "label window the CLV model is trained on: by default the horizon when the history holds it, else the longest window that leaves two labelled cutoffs and at most half the history (the prediction is then carried to the horizon by BG/NBD; ml/README.md)",
    ),
    Variable(
        "C720_CUTOFF_STEP_DAYS",
        "derived",
        "days between the churn model's training cutoffs (`ml.customer_features`: as_of and first order day + j × step); by default a third of the churn horizon when that is whole days, else half, else the horizon (90 → 30, 182 → 91): the grid also holds as_of − horizon, the holdout cutoff ([rule](dbt_project/macros/cutoff_grid.sql))",
    ),
    Variable(
        "C720_CUTOFF_COUNT",
        "derived",
        "number of cutoffs before as_of (k = 0..count); by default as many steps as fit between the data's first order and as_of, at most 12",
    ),
    Variable(
        "C720_ML_INACTIVITY_DAYS",
        "`365`",
        "customers lapsed longer than this get no churn score and no recommendations",
    ),
    Variable("C720_ML_NUM_THREADS", "`2`", "LightGBM / ALS threads"),
    Variable(
        "C720_ML_CHAMPION_MARGIN",
        "`0.005`",
        "ROC-AUC gain a new churn model needs to replace the champion",
    ),
    Variable(
        "C720_ML_MAX_ECE",
        "`0.10`",
        "sanity gate: largest expected calibration error of a churn model",
    ),
    Variable(
        "C720_ML_CALIBRATION",
        "`sigmoid`",
        "churn probability calibration: `sigmoid` (Platt) or `isotonic`",
    ),
    Variable(
        "C720_ML_RISK_BANDS",
        "`0.3,0.6`",
        "churn probability limits of the low / medium / high risk bands",
    ),
    Variable(
        "C720_ML_EXACT_REASONS",
        "`1`",
        "churn reasons from exact TreeSHAP (`0`: path contributions, ~10× faster)",
    ),
    Variable(
        "C720_CHURN_TRAIN_CUSTOMERS",
        "`100000`",
        "churn training: at most this many customers, a seeded random sample, all their "
        "cutoffs (bounds training memory; `0`: all)",
    ),
    # recommendations
    Variable(
        "C720_REC_MAX_PER_CATEGORY",
        "`5`",
        "business rule: at most this many products of one category in a list (≥ 10 switches it off)",
    ),
    Variable(
        "C720_REC_EXCLUDE_JUST_BOUGHT",
        "`0`",
        "`1`: no product bought in the last 30 days unless customers re-buy it",
    ),
    Variable(
        "C720_REC_CHAMPION_MARGIN",
        "`0.002`",
        "MAP@10 gain a new ranker needs to replace the champion",
    ),
    Variable("C720_REC_ALS", "`1`", "`0` skips the implicit-ALS baseline in evaluation"),
    Variable(
        "C720_REC_BATCH_CUSTOMERS",
        "`5000`",
        "customers whose candidates and features are built at once (bounds recommender memory)",
    ),
    Variable(
        "C720_REC_TRAIN_CUSTOMERS",
        "`8000`",
        "ranker training: at most this many buyers sampled per training week (`0`: all)",
    ),
    Variable(
        "C720_REC_REFRESH_DAYS",
        "`14`",
        "daily ranking re-ranks changed customers plus a rotation: every list at most this old "
        "(`1`: re-rank everyone every day)",
    ),
    # model monitoring
    Variable(
        "C720_MONITOR_AUC_MARGIN",
        "`0.05`",
        "monitoring alert: a week's realised churn ROC-AUC more than this below the model's holdout ROC-AUC",
    ),
    Variable(
        "C720_MONITOR_PSI_MAX",
        "`0.25`",
        "monitoring alert: population stability index of a model feature or of the scores above this, against the model's training data",
    ),
    # orchestration
    Variable("C720_TASK_RETRIES", "`2`", "Airflow retries per task (`make run` uses 0)"),
    Variable(
        "C720_ALERT_WEBHOOK", "–", "Slack-compatible webhook for task failures (logged always)"
    ),
    Variable("C720_AIRFLOW_PORT", "`8080`", "port of the Airflow UI (`make airflow`)"),
    Variable(
        "C720_TIME_SCHEDULES",
        "`1`",
        "`0`: the ingest (@daily) and train (@weekly) DAGs start only when triggered; "
        "the scheduler `make run` starts itself sets it",
    ),
    # the analysts' app
    Variable(
        "C720_APP_PORT",
        "`8501`",
        "port of the analysts' app (`make app`, on the published snapshot)",
    ),
    # tests only
    Variable(
        "C720_TEST_PG_URL",
        "`postgresql+psycopg2://postgres@127.0.0.1:5432/postgres`",
        "tests: the Postgres server the Postgres tests create their databases on",
    ),
)
_DECLARED = {v.name for v in VARIABLES}

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A ``C720_*`` variable with a value we cannot use; the message names it."""


def env(name: str, default: str | None = None) -> str | None:
    """The raw value of a declared ``C720_*`` variable (the only reader of the environment)."""
    if name.startswith("C720_") and name not in _DECLARED:
        raise KeyError(f"{name} is not a declared setting (customer720/settings.py VARIABLES)")
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _int(name: str, default: int) -> int:
    value = env(name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {value!r}") from None


def _optional_int(name: str, minimum: int) -> int | None:
    """A whole number >= minimum, or None when the variable is not set."""
    if env(name) is None:
        return None
    value = _int(name, minimum)
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


def _float(name: str, default: float) -> float:
    value = env(name)
    try:
        return default if value is None else float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {value!r}") from None


def _bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    if value.strip().lower() in TRUE_WORDS:
        return True
    if value.strip().lower() in FALSE_WORDS:
        return False
    raise SettingsError(f"{name} must be one of {TRUE_WORDS + FALSE_WORDS}, not {value!r}")


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env(name, default) or default
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _bands(name: str, default: tuple[float, float]) -> tuple[float, float]:
    value = env(name)
    if value is None:
        return default
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError:
        raise SettingsError(
            f"{name} must be two probabilities like '0.3,0.6', not {value!r}"
        ) from None
    if not 0 <= low < high <= 1:
        raise SettingsError(f"{name} needs 0 <= low < high <= 1, got {value!r}")
    return low, high


def _pairs(name: str) -> tuple[tuple[str, str], ...]:
    """``key=value;key=value`` as (key, value) pairs, later keys winning (empty when unset).
    A tuple, not a dict: Settings is frozen and hashable (cached per settings)."""
    pairs: dict[str, str] = {}
    for item in (env(name) or "").split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{name} must be key=value pairs separated by ';', not {item!r}")
        pairs[key.strip()] = value.strip()
    return tuple(pairs.items())


def _path(name: str, default: Path) -> Path:
    value = env(name)
    return Path(value).expanduser().resolve() if value else default


CHURN_LABELS = ("no_purchase", "no_purchase_no_engagement")
CALIBRATIONS = ("sigmoid", "isotonic")


@dataclass(frozen=True)
class Settings:
    local_dir: Path
    sources_dir: Path
    crm_url: str
    events_dir: Path
    no_events: bool
    truth_dir: Path
    warehouse: str
    spark_dir: Path
    spark_conf: tuple[tuple[str, str], ...]  # C720_SPARK_CONF pairs: dict(settings.spark_conf)
    published: Path
    airflow_home: Path
    model_dir: Path
    reports_dir: Path
    dbt_project_dir: Path
    duckdb_memory_limit: str
    quarantine_max_rate: float
    orphan_wait_days: int
    churn_horizon_days: int
    churn_label: str
    clv_horizon_days: int
    clv_label_days: int | None  # None: derived from the history (ml.clv.labels.label_window)
    cutoff_step_days: int | None  # None: derived from the data (macros/cutoff_grid.sql)
    cutoff_count: int | None
    ml_inactivity_days: int
    ml_num_threads: int
    churn_champion_margin: float
    churn_max_ece: float
    churn_calibration: str
    churn_risk_bands: tuple[float, float]
    churn_exact_reasons: bool
    churn_train_customers: int
    rec_max_per_category: int
    rec_exclude_just_bought: bool
    rec_champion_margin: float
    rec_als: bool
    rec_batch_customers: int
    rec_train_customers: int
    rec_refresh_days: int
    monitor_auc_margin: float
    monitor_psi_max: float
    task_retries: int
    alert_webhook: str | None
    airflow_port: int
    time_schedules: bool  # False: ingest/train DAGs without their cron (triggered runs only)
    app_port: int
    crm_url_is_set: bool  # C720_CRM_URL given explicitly (the simulator writes there then)

    @property
    def warehouse_is_postgres(self) -> bool:
        return self.warehouse.startswith(("postgres://", "postgresql://", "postgresql+"))

    @property
    def warehouse_is_spark(self) -> bool:
        return self.warehouse == "spark" or self.warehouse.startswith("spark://")

    @property
    def spark_master(self) -> str:
        """The Spark master of a Spark warehouse: ``local[*]`` for ``spark``, else the URL."""
        if not self.warehouse_is_spark:
            raise ValueError("C720_WAREHOUSE does not name a Spark warehouse")
        return "local[*]" if self.warehouse == "spark" else self.warehouse

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file. On Spark, the raw layer's DuckDB store: ingest validates and
        lands there (contract, quarantine, idempotent deletes need transactions) and hands
        the raw tables to Spark as Parquet (customer720/spark.py)."""
        if self.warehouse_is_postgres:
            raise ValueError("C720_WAREHOUSE points at Postgres; there is no DuckDB file")
        if self.warehouse_is_spark:
            return self.spark_dir / "raw_store.duckdb"
        return Path(self.warehouse)

    @property
    def dbt_target(self) -> str:
        if self.warehouse_is_spark:
            return "spark"
        return "postgres" if self.warehouse_is_postgres else "duckdb"

    def tool_env(self) -> dict[str, str]:
        """Environment for dbt / Airflow / child processes: settings made explicit."""
        env = dict(TELEMETRY_OFF)
        env.update(
            C720_LOCAL_DIR=str(self.local_dir),
            C720_SOURCES_DIR=str(self.sources_dir),
            C720_CRM_URL=self.crm_url,
            C720_EVENTS_DIR=str(self.events_dir),
            C720_NO_EVENTS="1" if self.no_events else "0",
            C720_WAREHOUSE=self.warehouse,
            C720_PUBLISHED=str(self.published),
            C720_MODEL_DIR=str(self.model_dir),
            C720_REPORTS_DIR=str(self.reports_dir),
            C720_CHURN_HORIZON_DAYS=str(self.churn_horizon_days),
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
        )
        # explicit cutoff settings only: unset means derived from the data
        if self.cutoff_step_days is not None:
            env["C720_CUTOFF_STEP_DAYS"] = str(self.cutoff_step_days)
        if self.cutoff_count is not None:
            env["C720_CUTOFF_COUNT"] = str(self.cutoff_count)
        if self.warehouse_is_postgres:
            url = make_url(self.warehouse)
            env.update(
                DBT_PG_HOST=url.host or "127.0.0.1",
                DBT_PG_PORT=str(url.port or 5432),
                DBT_PG_USER=url.username or "postgres",
                DBT_PG_PASSWORD=url.password or "",
                DBT_PG_DBNAME=url.database or "postgres",
                # libpq's session options for dbt's and our connections (a user's own
                # PGOPTIONS wins): no JIT. Our models are long queries - hundreds of
                # expressions - that Postgres compiles for seconds each once a plan's cost
                # passes jit_above_cost (on by default): int_identity_nodes_resolved spent
                # 5.3 of its 5.3 s compiling on a small warehouse, a whole build 18 s vs 9.5 s.
                PGOPTIONS=os.environ.get("PGOPTIONS", POSTGRES_SESSION_OPTIONS),
            )
        elif self.warehouse_is_spark:
            env["C720_SPARK_DIR"] = str(self.spark_dir)
            env["DBT_SPARK_MASTER"] = self.spark_master
            env["DBT_SPARK_DIR"] = str(self.spark_dir)
            from customer720.spark import conf_json  # a leaf module: no import cycle at load

            env["DBT_SPARK_CONF"] = conf_json(self)
        else:
            env["DBT_DUCKDB_PATH"] = self.warehouse
            # Bounded memory: DuckDB spills to disk above the limit (profiles.yml settings).
            env["DBT_DUCKDB_MEMORY_LIMIT"] = self.duckdb_memory_limit
        return env


def get_settings() -> Settings:
    local = _path("C720_LOCAL_DIR", PROJECT_ROOT / ".local")
    sources = _path("C720_SOURCES_DIR", local / "sources")
    return Settings(
        local_dir=local,
        sources_dir=sources,
        crm_url=env("C720_CRM_URL", f"sqlite:///{sources / 'crm.sqlite'}"),
        crm_url_is_set=env("C720_CRM_URL") is not None,
        events_dir=_path("C720_EVENTS_DIR", sources / "events"),
        no_events=_bool("C720_NO_EVENTS", False),
        truth_dir=_path("C720_TRUTH_DIR", sources / "truth"),
        warehouse=env("C720_WAREHOUSE", str(local / "warehouse.duckdb")),
        spark_dir=_path("C720_SPARK_DIR", local / "spark"),
        spark_conf=_pairs("C720_SPARK_CONF"),
        published=_path("C720_PUBLISHED", local / "published.duckdb"),
        # Airflow's own variable: Airflow reads it too, so it keeps its name.
        airflow_home=Path(os.environ["AIRFLOW_HOME"]).expanduser().resolve()
        if os.environ.get("AIRFLOW_HOME")
        else local / "airflow",
        model_dir=_path("C720_MODEL_DIR", local / "models"),
        reports_dir=_path("C720_REPORTS_DIR", local / "reports"),
        dbt_project_dir=PROJECT_ROOT / "dbt_project",
        duckdb_memory_limit=env("C720_DUCKDB_MEMORY_LIMIT", "4GB"),
        quarantine_max_rate=_float("C720_QUARANTINE_MAX_RATE", 0.05),
        orphan_wait_days=_int("C720_ORPHAN_WAIT_DAYS", 7),
        churn_horizon_days=_int("C720_CHURN_HORIZON_DAYS", 90),
        churn_label=_choice("C720_CHURN_LABEL", "no_purchase", CHURN_LABELS),
        clv_horizon_days=_int("C720_CLV_HORIZON_DAYS", 365),
        clv_label_days=_optional_int("C720_CLV_LABEL_DAYS", minimum=1),
        # The training cutoffs of ml.customer_features: as_of - k * step, k = 0..count
        # (dbt vars cutoff_step_days / cutoff_count); None = derived from the data in SQL.
        cutoff_step_days=_optional_int("C720_CUTOFF_STEP_DAYS", minimum=1),
        cutoff_count=_optional_int("C720_CUTOFF_COUNT", minimum=0),
        ml_inactivity_days=_int("C720_ML_INACTIVITY_DAYS", 365),
        ml_num_threads=_int("C720_ML_NUM_THREADS", 2),
        churn_champion_margin=_float("C720_ML_CHAMPION_MARGIN", 0.005),
        churn_max_ece=_float("C720_ML_MAX_ECE", 0.10),
        churn_calibration=_choice("C720_ML_CALIBRATION", "sigmoid", CALIBRATIONS),
        churn_risk_bands=_bands("C720_ML_RISK_BANDS", (0.3, 0.6)),
        churn_exact_reasons=_bool("C720_ML_EXACT_REASONS", True),
        churn_train_customers=_int("C720_CHURN_TRAIN_CUSTOMERS", 100_000),
        rec_max_per_category=_int("C720_REC_MAX_PER_CATEGORY", 5),
        rec_exclude_just_bought=_bool("C720_REC_EXCLUDE_JUST_BOUGHT", False),
        rec_champion_margin=_float("C720_REC_CHAMPION_MARGIN", 0.002),
        rec_als=_bool("C720_REC_ALS", True),
        rec_batch_customers=_int("C720_REC_BATCH_CUSTOMERS", 5000),
        rec_train_customers=_int("C720_REC_TRAIN_CUSTOMERS", 8000),
        rec_refresh_days=_int("C720_REC_REFRESH_DAYS", 14),
        monitor_auc_margin=_float("C720_MONITOR_AUC_MARGIN", 0.05),
        monitor_psi_max=_float("C720_MONITOR_PSI_MAX", 0.25),
        # Airflow retries per task; the one-shot `make run` sets 0 so a failure shows at once.
        task_retries=_int("C720_TASK_RETRIES", 2),
        alert_webhook=env("C720_ALERT_WEBHOOK"),
        airflow_port=_int("C720_AIRFLOW_PORT", 8080),
        time_schedules=_bool("C720_TIME_SCHEDULES", True),
        app_port=_int("C720_APP_PORT", 8501),
    )


def postgres_test_url() -> str:
    """The server Postgres tests create their own databases on."""
    return env("C720_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def apply_tool_env() -> Settings:
    """Export the settings (and telemetry-off flags) into this process's environment."""
    settings = get_settings()
    for key, value in settings.tool_env().items():
        if key.startswith(("C720_", "DBT_")):
            # Derived from the settings: always theirs. A DBT_TARGET_PATH left in the
            # environment by an earlier run for another C720_LOCAL_DIR would send dbt's
            # manifest and run results to that folder (`dbt retry` would find none here).
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)
    return settings


def markdown_table() -> str:
    """The README's settings table, generated from ``VARIABLES``."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{v.name}` | {v.default} | {v.meaning} |" for v in VARIABLES]
    lines.append(
        "| `AIRFLOW_HOME` | `.local/airflow` | Airflow's home (SQLite metadata DB); Airflow's own variable |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
