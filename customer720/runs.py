"""The parts of one date's run, kept as small JSON files so several DAGs add to one summary.

Each pipeline step returns a small dict (rows loaded, gate result, model metrics, ...).
The steps run in different DAGs (ingest, transform, train, score), so they cannot pass
these to the summary as XComs; they write them to ``reports/runs/<date>/parts/<name>.json``
instead. Re-running a date overwrites its parts: the summary is idempotent too.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

from customer720.settings import Settings, get_settings

log = logging.getLogger(__name__)


def parts_dir(as_of: date, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).reports_dir / "runs" / as_of.isoformat() / "parts"


def save_part(
    as_of: date, name: str, part: dict[str, Any], settings: Settings | None = None
) -> dict:
    """Keep ``part`` as this date's ``name``; return it unchanged (for the task's XCom)."""
    out = parts_dir(as_of, settings)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(part, indent=2, default=str))
    return part


def load_parts(as_of: date, settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Every part saved for ``as_of``; the newest churn model if none was trained that date."""
    settings = settings or get_settings()
    parts = {
        path.stem: json.loads(path.read_text())
        for path in sorted(parts_dir(as_of, settings).glob("*.json"))
    }
    if "churn_model" not in parts:
        # Training is weekly or on demand: show the model that scored, from its own date.
        trained = sorted((settings.reports_dir / "runs").glob("*/parts/churn_model.json"))
        if trained:
            parts["churn_model"] = json.loads(trained[-1].read_text())
    return parts
