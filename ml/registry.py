"""A folder-based model registry with a champion pointer.

Layout under ``<model_dir>/churn/``::

    <version>/model.txt        LightGBM model (text)
    <version>/calibrator.joblib
    <version>/metadata.json    version, window, cutoffs, features, metrics, baselines, gates
    champion.json              {"version": ..., "promoted_at": ..., "reason": ...}

Only a model that passed the sanity gates can become champion. Scoring uses the champion;
when there is none yet (the first model failed its gates) it falls back to the newest
registered model and says so (see :func:`resolve_scoring_version`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import lightgbm as lgb

from customer720.settings import PROJECT_ROOT
from ml.features import FeatureSpec

log = logging.getLogger(__name__)

CHAMPION_FILE = "champion.json"


@dataclass
class LoadedModel:
    version: str
    booster: lgb.Booster
    calibrator: Any
    spec: FeatureSpec
    metadata: dict


def code_version() -> str | None:
    """The git commit of the project, if available."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _json_default(o: Any) -> Any:
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default, allow_nan=True))
    tmp.replace(path)  # atomic on one filesystem


def save_model(
    model_dir: Path, version: str, booster: lgb.Booster, calibrator: Any, metadata: dict
) -> Path:
    folder = model_dir / version
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(folder / "model.txt"))
    joblib.dump(calibrator, folder / "calibrator.joblib")
    write_json(folder / "metadata.json", metadata)
    log.info("registered churn model %s in %s", version, folder)
    return folder


def list_versions(model_dir: Path) -> list[str]:
    """Registered versions, oldest first (by the registration time in metadata)."""
    if not model_dir.exists():
        return []
    metas = []
    for meta in model_dir.glob("*/metadata.json"):
        d = json.loads(meta.read_text())
        metas.append((d.get("registered_at", ""), d["version"]))
    return [v for _, v in sorted(metas)]


def load_model(model_dir: Path, version: str) -> LoadedModel:
    folder = model_dir / version
    if not (folder / "model.txt").exists():
        raise FileNotFoundError(f"no churn model {version!r} in {model_dir}")
    metadata = json.loads((folder / "metadata.json").read_text())
    return LoadedModel(
        version=version,
        booster=lgb.Booster(model_file=str(folder / "model.txt")),
        calibrator=joblib.load(folder / "calibrator.joblib"),
        spec=FeatureSpec.from_dict(metadata["features"]),
        metadata=metadata,
    )


def champion_version(model_dir: Path) -> str | None:
    path = model_dir / CHAMPION_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("version")


def set_champion(model_dir: Path, version: str, reason: str) -> None:
    """Point champion.json at ``version`` and append the change to champion_history.jsonl."""
    entry = {
        "version": version,
        "previous": champion_version(model_dir),
        "promoted_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "reason": reason,
    }
    write_json(model_dir / CHAMPION_FILE, entry)
    with (model_dir / "champion_history.jsonl").open("a") as fh:
        fh.write(json.dumps(entry, default=_json_default) + "\n")
    log.info("champion is now %s (%s)", version, reason)


def resolve_scoring_version(model_dir: Path) -> tuple[str, str]:
    """(version, status) to score with: the champion, else the newest model (gate failed)."""
    champ = champion_version(model_dir)
    if champ:
        return champ, "champion"
    versions = list_versions(model_dir)
    if not versions:
        raise FileNotFoundError(
            f"no churn model registered in {model_dir}; run `python -m ml train --as-of ...` first"
        )
    log.warning(
        "no champion yet (no model passed the sanity gates); scoring with the newest model %s",
        versions[-1],
    )
    return versions[-1], "no_champion_newest_model_failed_gates"
