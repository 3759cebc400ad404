"""The gates a run must pass: raw (after ingest), marts (before ML), scores (before publish).

dbt tests guard keys and relationships inside the models; these gates cover what dbt
does not: the day's batch against its own history (volume), value ranges of what we
publish, and that no personal data reaches a mart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import great_expectations as gx
import pandas as pd

from customer720 import warehouse
from customer720.settings import Settings, get_settings
from ingest.contract import accepted_values, events_table
from quality.gx_runner import SuiteResult, build_data_docs, gx_root, run_suite

log = logging.getLogger(__name__)

EVENT_TYPES = accepted_values("events", "event_type")
# Column names that carry personal data in our sources; marts keep hashes and keys instead.
PII_COLUMNS = {"email", "email_address", "phone", "first_name", "last_name", "full_name", "address"}
VOLUME_TOLERANCE = 5.0  # a day may have 1/5x to 5x the trailing 7-day average of events
# Device clocks drift and apps send late: a device time this far from the collector's day
# is normal for a few events; for more than CLOCK_SKEW_MAX_SHARE of the day it is not.
CLOCK_SKEW_WINDOW = timedelta(days=2)
CLOCK_SKEW_MAX_SHARE = 0.05


class QualityGateFailed(RuntimeError):
    """A gate failed: the run must not go on to publish for this date."""


@dataclass
class GateResult:
    gate: str
    as_of: str
    success: bool
    suites: list[SuiteResult] = field(default_factory=list)
    data_docs: str = ""
    alerts: list[str] = field(default_factory=list)  # a non-blocking gate's findings, in words

    @property
    def failures(self) -> list[str]:
        return [f"{s.suite}: {f}" for s in self.suites for f in s.failures]

    def as_dict(self) -> dict:
        return {
            "gate": self.gate,
            "as_of": self.as_of,
            "success": self.success,
            "failures": self.failures,
            "data_docs": self.data_docs,
        } | ({"alerts": self.alerts} if self.alerts else {})


def _finish(gate: GateResult, settings: Settings, blocking: bool = True) -> GateResult:
    gate.success = all(s.success for s in gate.suites)
    day = date.fromisoformat(gate.as_of)
    gate.data_docs = str(build_data_docs(settings, day))
    out = gx_root(settings, day)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{gate.gate}.json").write_text(json.dumps(asdict(gate), indent=2, default=str))
    if not gate.success and blocking:
        lines = "\n  ".join(gate.failures)
        raise QualityGateFailed(
            f"quality gate '{gate.gate}' failed for {gate.as_of}; nothing will be published "
            f"for this date:\n  {lines}\nData docs: {gate.data_docs}"
        )
    log.info("gate %s passed for %s (%d suites)", gate.gate, gate.as_of, len(gate.suites))
    return gate


@dataclass(frozen=True)
class QuerySuite:
    """A suite over one query's rows: its name, the SQL and the expectations."""

    name: str
    sql: str
    expectations: list[Any]


def _run_query_suites(
    suites: Sequence[QuerySuite], settings: Settings, as_of: date
) -> list[SuiteResult]:
    """Each suite on its query's rows, in order."""
    return [
        run_suite(s.name, warehouse.query_df(s.sql, settings), s.expectations, settings, as_of)
        for s in suites
    ]


def check_raw(
    as_of: date, settings: Settings | None = None, failed_loads: Sequence[str] = ()
) -> GateResult:
    """The day's raw batch: loads complete, ids present, timestamps in range, volume near
    its history. ``failed_loads`` names load tasks that failed (the gate then fails too,
    after writing its data docs, so the reason is there as well as in the task log)."""
    settings = settings or get_settings()
    gate = GateResult("raw", as_of.isoformat(), False)
    gate.suites.append(_raw_loads(as_of, failed_loads, settings))
    day, next_day = as_of.isoformat(), (as_of + timedelta(days=1)).isoformat()
    events = warehouse.query_df(
        f"""select * from raw.web_events
            where collector_timestamp >= date '{day}' and collector_timestamp < date '{next_day}'""",
        settings,
    )
    history = warehouse.scalar(
        f"""select avg(n) from (
              select cast(collector_timestamp as date) as d, count(*) as n from raw.web_events
              where collector_timestamp >= date '{(as_of - timedelta(days=7)).isoformat()}'
                and collector_timestamp < date '{day}'
              group by 1)""",
        settings,
    )
    if bool(warehouse.scalar("select count(*) > 0 from raw.web_events", settings)):
        gate.suites.append(_raw_events_day(as_of, events, history, settings))
    expect = gx.expectations
    crm = [
        QuerySuite(
            "raw_crm_contacts",
            "select contact_id, created_at from raw.crm_contacts",
            [
                expect.ExpectTableRowCountToBeBetween(min_value=1),
                expect.ExpectColumnValuesToBeUnique(column="contact_id"),
                expect.ExpectColumnValuesToNotBeNull(column="created_at"),
            ],
        ),
        QuerySuite(
            "raw_crm_orders",
            "select order_id, contact_id, total_amount from raw.crm_orders",
            [
                expect.ExpectColumnValuesToBeUnique(column="order_id"),
                expect.ExpectColumnValuesToNotBeNull(column="contact_id"),
                expect.ExpectColumnValuesToBeBetween(column="total_amount", min_value=0),
            ],
        ),
    ]
    gate.suites += _run_query_suites(crm, settings, as_of)
    return _finish(gate, settings)


def _raw_loads(as_of: date, failed_loads: Sequence[str], settings: Settings) -> SuiteResult:
    """The newest CRM and event loads: every source loaded (none rejected for too many bad
    records or unreadable), and every load task finished."""
    audit = warehouse.query_df(
        """select source, outcome, reason, rows from raw.load_audit
           where batch_id in (
               select batch_id from raw.load_runs r
               where started_at = (select max(started_at) from raw.load_runs r2
                                   where r2.kind = r.kind))""",
        settings,
    )
    problems: dict[str, str | None] = {str(s): None for s in audit["source"].unique()}
    for source in audit.loc[audit["outcome"].isin(["rejected", "failed"]), "source"].unique():
        rows = audit[(audit["source"] == source) & (audit["outcome"] != "loaded")]
        top = rows.sort_values("rows", ascending=False).head(4)
        reasons = "; ".join(
            f"{r.reason}" if r.outcome in ("rejected", "failed") else f"{r.rows} x {r.reason}"
            for r in top.itertuples()
        )
        problems[str(source)] = f"{source}: not loaded: {reasons}"
    for task_id in failed_loads:
        problems[f"task {task_id}"] = f"task {task_id} failed: see its log"
    batch = pd.DataFrame(
        {"source": list(problems), "problem": pd.Series(list(problems.values()), dtype=object)}
    )
    return run_suite(
        "raw_loads",
        batch,
        [gx.expectations.ExpectColumnValuesToBeNull(column="problem")],
        settings,
        as_of,
    )


def _raw_events_day(
    as_of: date, events: pd.DataFrame, history: float | None, settings: Settings
) -> SuiteResult:
    """The day's events: the contract's columns, ids, types, device times, volume."""
    low, high = as_of - CLOCK_SKEW_WINDOW, as_of + timedelta(days=1) + CLOCK_SKEW_WINDOW
    expectations = [
        # A day with no events is a missing delivery, not a quiet day: stop here.
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        gx.expectations.ExpectTableColumnsToMatchSet(
            column_set=[c.name for c in events_table().columns], exact_match=False
        ),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="event_id"),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="anonymous_id"),
        gx.expectations.ExpectColumnValuesToBeInSet(column="event_type", value_set=EVENT_TYPES),
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="collector_timestamp",
            min_value=pd.Timestamp(as_of),
            max_value=pd.Timestamp(as_of + timedelta(days=1)),
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="device_timestamp",
            min_value=pd.Timestamp(low),
            max_value=pd.Timestamp(high),
            mostly=1 - CLOCK_SKEW_MAX_SHARE,
        ),
    ]
    if history:
        expectations.append(
            gx.expectations.ExpectTableRowCountToBeBetween(
                min_value=int(history / VOLUME_TOLERANCE),
                max_value=int(history * VOLUME_TOLERANCE) + 1,
            )
        )
    return run_suite("raw_web_events_day", events, expectations, settings, as_of)


def _marts_pii(settings: Settings) -> SuiteResult:
    leaked = sorted(
        f"{t}.{c}" for t, c in warehouse.columns("marts", settings) if c.lower() in PII_COLUMNS
    )
    return SuiteResult(
        "marts_no_personal_data",
        not leaked,
        [f"personal data column(s) in marts: {leaked}"] if leaked else [],
        1,
    )


def check_marts(as_of: date, settings: Settings | None = None) -> GateResult:
    """Before ML: features for this date exist and are unique, no personal data in marts."""
    settings = settings or get_settings()
    gate = GateResult("marts", as_of.isoformat(), False)
    expect = gx.expectations
    suites = [
        QuerySuite(
            "ml_customer_features",
            "select customer_key, cutoff_date from ml.customer_features",
            [
                expect.ExpectTableRowCountToBeBetween(min_value=1),
                expect.ExpectColumnValuesToNotBeNull(column="customer_key"),
                expect.ExpectCompoundColumnsToBeUnique(column_list=["customer_key", "cutoff_date"]),
                # Freshness: the newest cutoff is this run's date (pandas reads DATE as Timestamp).
                expect.ExpectColumnMaxToBeBetween(
                    column="cutoff_date",
                    min_value=pd.Timestamp(as_of - timedelta(days=1)),
                    max_value=pd.Timestamp(as_of),
                ),
            ],
        ),
        QuerySuite(
            "marts_fct_orders",
            "select order_id, customer_key from marts.fct_orders",
            [
                expect.ExpectColumnValuesToBeUnique(column="order_id"),
                expect.ExpectColumnValuesToNotBeNull(column="customer_key"),
            ],
        ),
    ]
    gate.suites += _run_query_suites(suites, settings, as_of)
    gate.suites.append(_marts_pii(settings))
    return _finish(gate, settings)


def _scores_suites(day: str) -> list[QuerySuite]:
    """The scores gate's suites. Only ``day``'s rows: a backfill of an older date must not
    be judged by the newest scores."""
    expect = gx.expectations
    return [
        QuerySuite(
            "marts_dim_customer_720",
            "select customer_key from marts.dim_customer_720",
            [
                expect.ExpectTableRowCountToBeBetween(min_value=1),
                expect.ExpectColumnValuesToBeUnique(column="customer_key"),
                expect.ExpectColumnValuesToNotBeNull(column="customer_key"),
            ],
        ),
        QuerySuite(
            "marts_customer_churn_scores",
            "select customer_key, churn_probability "
            f"from marts.customer_churn_score_history where as_of_date = date '{day}'",
            [
                expect.ExpectTableRowCountToBeBetween(min_value=1),
                expect.ExpectColumnValuesToBeUnique(column="customer_key"),
                expect.ExpectColumnValuesToBeBetween(
                    column="churn_probability", min_value=0, max_value=1
                ),
            ],
        ),
        QuerySuite(
            "marts_customer_clv_scores",
            "select customer_key, clv, horizon_days from marts.customer_clv_score_history "
            f"where as_of_date = date '{day}'",
            [
                expect.ExpectTableRowCountToBeBetween(min_value=1),
                expect.ExpectColumnValuesToBeUnique(column="customer_key"),
                expect.ExpectColumnValuesToNotBeNull(column="clv"),
                expect.ExpectColumnValuesToBeBetween(column="clv", min_value=0),
                expect.ExpectColumnValuesToBeBetween(column="horizon_days", min_value=1),
            ],
        ),
        # what the account team sees: revenue at risk = P(churn) x CLV, one save rank each
        QuerySuite(
            "marts_customer_value_scores",
            "select customer_key, revenue_at_risk, save_rank, "
            "abs(revenue_at_risk - churn_probability * clv) as revenue_at_risk_error "
            f"from marts.customer_value_scores where as_of_date = date '{day}'",
            [
                expect.ExpectTableRowCountToBeBetween(min_value=1),
                expect.ExpectColumnValuesToBeUnique(column="customer_key"),
                expect.ExpectColumnValuesToBeBetween(column="revenue_at_risk", min_value=0),
                expect.ExpectColumnValuesToBeBetween(
                    column="revenue_at_risk_error", max_value=0.005
                ),
                expect.ExpectColumnValuesToBeUnique(column="save_rank"),
                expect.ExpectColumnValuesToBeBetween(column="save_rank", min_value=1),
            ],
        ),
        QuerySuite(
            "marts_customer_recommendations",
            "select customer_key, rank, product_id from ml.product_recommendations "
            f"where as_of_date = date '{day}'",
            [
                expect.ExpectColumnValuesToNotBeNull(column="product_id"),
                expect.ExpectColumnValuesToBeBetween(column="rank", min_value=1),
                expect.ExpectCompoundColumnsToBeUnique(column_list=["customer_key", "rank"]),
            ],
        ),
    ]


def check_scores(as_of: date, settings: Settings | None = None) -> GateResult:
    """Before publishing: one row per person, scores for this date in [0, 1], CLV and
    revenue at risk (= P(churn) × CLV) not negative, one save rank each, recommendations."""
    settings = settings or get_settings()
    gate = GateResult("scores", as_of.isoformat(), False)
    gate.suites += _run_query_suites(_scores_suites(as_of.isoformat()), settings, as_of)
    gate.suites.append(_marts_pii(settings))
    return _finish(gate, settings)


def check_models(as_of: date, settings: Settings | None = None) -> GateResult:
    """After scoring: the date's model monitoring rows (``ml.model_monitoring``, written by
    the stage ``monitor_models``) hold no alert — realised churn ROC-AUC of an issue week
    more than ``C720_MONITOR_AUC_MARGIN`` below the model's holdout, or a PSI of a feature
    or of the score above ``C720_MONITOR_PSI_MAX`` (and above the shift the training data
    itself spans, see ml/monitoring/psi.py).

    **Non-blocking**: a failed check is returned, not raised; the caller sends the alert
    (orchestrate.stages, through orchestrate.callbacks.alert). Why: the scores of a drifted
    or weaker model are still the freshest scores there are — stopping the run would leave
    readers and the CRM with older scores from the same model, and the realised figures are
    about scores issued a horizon ago. What helps is a person looking and retraining."""
    settings = settings or get_settings()
    gate = GateResult("models", as_of.isoformat(), False)
    rows = warehouse.query_df(
        "select model, model_version, metric, subject, cast(issue_week as varchar(10)) as week, "
        "value, reference_value, threshold, is_alert from ml.model_monitoring "
        f"where as_of_date = date '{as_of.isoformat()}'",
        settings,
    )
    problems = pd.Series(
        [_monitoring_problem(r) for r in rows.itertuples(index=False)], dtype=object
    )
    gate.alerts = [p for p in problems if p]
    batch = pd.DataFrame({"check": rows["metric"] + ":" + rows["subject"], "problem": problems})
    gate.suites.append(
        run_suite(
            "model_monitoring",
            batch,
            [gx.expectations.ExpectColumnValuesToBeNull(column="problem")],
            settings,
            as_of,
        )
    )
    return _finish(gate, settings, blocking=False)


def _monitoring_problem(r) -> str | None:
    if not r.is_alert:
        return None
    if r.metric == "psi":
        what = "the churn score" if r.subject == "score" else f"feature {r.subject}"
        return f"{r.model} {r.model_version}: PSI of {what} {r.value:.3f} > {r.threshold:.3f}"
    return (
        f"{r.model} {r.model_version}: realised {r.metric} {r.value:.3f} of the scores issued "
        f"in the week of {r.week} is below {r.threshold:.3f} (holdout {r.reference_value:.3f})"
    )


def monitoring_alert(gate: GateResult) -> str | None:
    """The alert text of a failed :func:`check_models`, naming the drifted features."""
    if gate.success:
        return None
    head = f"customer720 model monitoring for {gate.as_of}: {len(gate.alerts)} alert(s)"
    drifted = drifted_features(gate)
    if drifted:
        head += f"; drifted features: {', '.join(drifted)}"
    return head + ". " + "; ".join(gate.alerts[:20]) + f". Data docs: {gate.data_docs}"


def drifted_features(gate: GateResult) -> list[str]:
    """The features whose PSI alerted in a :func:`check_models` result."""
    marker = "PSI of feature "
    return sorted({a.split(marker, 1)[1].split(" ")[0] for a in gate.alerts if marker in a})
