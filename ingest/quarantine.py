"""Quarantine in plain sight: what a load (or every load) put in ``raw.quarantine``, per
table with the top reasons, and a WARNING naming the query that lists the records.

Used by ``extract_crm`` / ``load_events`` (their summaries carry ``quarantine``, which the
run summary shows) and by ``python -m ingest status``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

Fetch = Callable[[str, Sequence[Any]], list]


def list_query(batch_id: str | None = None) -> str:
    """The SQL that lists the quarantined records (of one batch)."""
    where = f" where batch_id = '{batch_id}'" if batch_id else ""
    return f"select * from raw.quarantine{where}"


def quarantine_counts(fetch: Fetch, batch_id: str | None = None, top: int = 3) -> dict:
    """Quarantined records per table (of ``batch_id``, else all) with the ``top`` reasons:
    ``{"total", "tables": {table: {"rows", "reasons": [[reason, n], …]}}, "query"}``."""
    where, params = ("where batch_id = ?", [batch_id]) if batch_id else ("", [])
    rows = fetch(
        f"""select table_name, reason, count(*) as n from raw.quarantine {where}
            group by 1, 2 order by 1, 3 desc, 2""",
        params,
    )
    tables: dict[str, dict] = {}
    for table, reason, n in rows:
        entry = tables.setdefault(str(table), {"rows": 0, "reasons": []})
        entry["rows"] += int(n)
        if len(entry["reasons"]) < top:
            entry["reasons"].append([str(reason), int(n)])
    return {
        "total": sum(t["rows"] for t in tables.values()),
        "tables": tables,
        "query": list_query(batch_id),
    }


def warn_if_quarantined(fetch: Fetch, batch_id: str, kind: str) -> dict:
    """Counts of this load's quarantine; a WARNING with the listing query if there are any."""
    counts = quarantine_counts(fetch, batch_id)
    if counts["total"]:
        per_table = ", ".join(f"{t} {e['rows']:,}" for t, e in counts["tables"].items())
        log.warning(
            "%s load %s quarantined %d record(s) (%s); list them with: %s",
            kind,
            batch_id,
            counts["total"],
            per_table,
            counts["query"],
        )
    return counts


def describe(counts: dict) -> list[str]:
    """One line per table: 'crm_orders: 3 (2 x bad date; 1 x missing key)'."""
    return [
        f"{table}: {e['rows']:,} ("
        + "; ".join(f"{n:,} x {reason}" for reason, n in e["reasons"])
        + ")"
        for table, e in counts.get("tables", {}).items()
    ]
