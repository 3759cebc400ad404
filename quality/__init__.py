"""Quality gates: Great Expectations suites over the raw layer and the marts.

A gate validates a DataFrame batch (GX's SQL datasource misreads DuckDB through
duckdb-engine, so we fetch through our own warehouse module), writes GX data docs, and
raises ``QualityGateFailed`` with the failed expectations so the run stops before it
publishes anything — except ``check_models`` (model monitoring), which only alerts.
"""

from quality.gates import (
    GateResult,
    QualityGateFailed,
    check_marts,
    check_models,
    check_raw,
    check_scores,
)

__all__ = [
    "GateResult",
    "QualityGateFailed",
    "check_marts",
    "check_models",
    "check_raw",
    "check_scores",
]
