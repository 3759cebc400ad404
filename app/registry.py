"""The model registry and training reports, read as files (no import of ``ml``).

``<model_dir>/<kind>/champion.json`` names the champion; ``<version>/metadata.json`` holds
its metrics. Reports are HTML files training wrote under ``<reports_dir>/churn/<version>/``
and ``<reports_dir>/recommendations/<as_of>/``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# registry folder → report folder under reports_dir
KINDS = {"churn": "churn", "recommend": "recommendations"}
REPORT_KINDS = set(KINDS.values())


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _scalars(metrics: dict, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Flat name → number/str of a metrics dict (curves and long lists left out)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float | str) and len(str(value)) <= 60:
            out[name] = value
        elif isinstance(value, dict) and depth < 1:
            out.update(_scalars(value, f"{name}.", depth + 1))
    return out


def model_summary(model_dir: Path, kind: str) -> dict:
    """Champion, its headline metrics, and every registered version (newest first)."""
    folder = model_dir / kind
    champion = _json(folder / "champion.json")
    versions = []
    for meta_path in folder.glob("*/metadata.json") if folder.is_dir() else []:
        meta = _json(meta_path)
        gates = meta.get("gates") or {}
        versions.append(
            {
                "version": meta.get("version", meta_path.parent.name),
                "registered_at": meta.get("registered_at") or meta.get("trained_at"),
                "is_champion": meta_path.parent.name == champion.get("version"),
                # churn: holdout metrics; recommender: offline MAP@k etc. per method
                "metrics": _scalars(meta.get("metrics", {})),
                "methods": {
                    name: _scalars(figures)
                    for name, figures in (meta.get("offline") or {}).items()
                    if isinstance(figures, dict)
                },
                "gates_passed": gates.get("passed"),
                "gate_failures": gates.get("failures") or [],
                "decision": (meta.get("champion_decision") or {}).get("reason"),
                "meta": meta,
            }
        )
    versions.sort(key=lambda v: str(v["registered_at"] or v["version"]), reverse=True)
    shown = next((v for v in versions if v["is_champion"]), versions[0] if versions else None)
    return {"kind": kind, "champion": champion, "versions": versions, "shown": shown}


def reports(reports_dir: Path) -> dict[str, list[dict]]:
    """HTML reports per kind: relative path (for /reports/...) and folder name, newest first."""
    out: dict[str, list[dict]] = {}
    for kind in sorted(REPORT_KINDS):
        root = reports_dir / kind
        found = sorted(root.glob("*/report.html"), reverse=True) if root.is_dir() else []
        out[kind] = [
            {"name": p.parent.name, "path": f"{kind}/{p.parent.name}/report.html"} for p in found
        ]
    return out


def report_file(reports_dir: Path, kind: str, name: str, file: str) -> Path | None:
    """A report's file, only inside ``<reports_dir>/<kind>/<name>/`` (no path tricks)."""
    if kind not in REPORT_KINDS or "/" in name or name.startswith(".") or "/" in file:
        return None
    path = (reports_dir / kind / name / file).resolve()
    root = (reports_dir / kind).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path
