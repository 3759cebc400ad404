"""A folder-based model registry with a champion pointer, shared by both models.

Layout under ``<model_dir>/churn/`` and ``<model_dir>/recommend/``::

    <version>/model.txt        LightGBM model (text)
    <version>/calibrator.joblib (churn only)
    <version>/evaluated_*      churn: the fit the holdout judged, when the scoring one is a
                               refit with more rows (ml.churn.train._deployed_model)
    <version>/metadata.json    version, window, cutoffs, features, metrics, baselines, gates
    champion.json              {"version": ..., "promoted_at": ..., "reason": ...}
    champion_history.jsonl     every champion change

:func:`promote` is the one champion/challenger step of both models: it makes the version
id, decides (gates, then the champion on the same evaluation rows), registers the folder
and moves the champion pointer.

Only a model that passed the sanity gates can become champion. Scoring uses the champion;
when there is none yet (the first models failed their gates) it falls back to the best
model of the newest training run on its holdout, and says so (see
:func:`resolve_scoring_version`): a baseline that beat LightGBM but missed a calibration
gate ranks people better than the LightGBM model that lost to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb

from customer720.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

CHAMPION_FILE = "champion.json"
# What to run when a model kind has none registered.
TRAIN_HINTS = {
    "churn": "run `python -m ml churn train --as-of ...` first",
    "recommendation": "run `python -m ml recs train --as-of ...` first",
    "clv": "run `python -m ml clv train --as-of ...` first",
}


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


def _metadata(model_dir: Path) -> dict[str, dict]:
    """Every registered version's metadata, oldest first (by registration time)."""
    if not model_dir.exists():
        return {}
    metas = [json.loads(m.read_text()) for m in model_dir.glob("*/metadata.json")]
    metas.sort(key=lambda d: (d.get("registered_at", ""), d["version"]))
    return {d["version"]: d for d in metas}


def list_versions(model_dir: Path) -> list[str]:
    """Registered versions, oldest first (by the registration time in metadata)."""
    return list(_metadata(model_dir))


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


def _trained_for(meta: dict | None) -> dt.date | None:
    """The date a registered version was trained for (``as_of`` in its metadata)."""
    as_of = (meta or {}).get("as_of")
    return dt.date.fromisoformat(str(as_of)[:10]) if as_of else None


def _as_of_version(
    model_dir: Path, metas: dict[str, dict], as_of: dt.date
) -> tuple[str, str] | None:
    """The champion as it stood for ``as_of``: the newest champion change to a model trained
    for ``as_of`` or before, else the best of the newest such run (none passed its gates)."""
    history = model_dir / "champion_history.jsonl"
    lines = history.read_text().splitlines() if history.exists() else []
    for line in reversed(lines):
        version = json.loads(line)["version"]
        if (trained := _trained_for(metas.get(version))) and trained <= as_of:
            return version, "champion_as_of"
    older = {v: m for v, m in metas.items() if (t := _trained_for(m)) and t <= as_of}
    if not older:
        return None
    return _best_of_newest_run(older), "no_champion_best_of_newest_run_failed_gates"


def resolve_scoring_version(
    model_dir: Path, kind: str = "churn", as_of: dt.date | None = None
) -> tuple[str, str]:
    """(version, status) to score with: the champion, else the newest run's best model.

    With ``as_of`` older than that model's training date (a backfill after a later day),
    the champion as it stood for that date (:func:`_as_of_version`): a past date is never
    scored with a model trained on data after it, and its replay uses the model its first
    run used. When no model that old exists, the current one, with a warning."""
    champ = champion_version(model_dir)
    metas = _metadata(model_dir)  # read once: every choice below looks at the metadata
    if not metas:
        hint = TRAIN_HINTS.get(kind, TRAIN_HINTS["churn"])
        raise FileNotFoundError(f"no {kind} model registered in {model_dir}; {hint}")
    current = champ or _best_of_newest_run(metas)
    trained = _trained_for(metas.get(current))
    if as_of is not None and trained and trained > as_of:
        if found := _as_of_version(model_dir, metas, as_of):
            log.info("scoring %s with %s, the %s model as of that date", as_of, found[0], kind)
            return found
        log.warning(
            "no %s model trained for %s or before: scoring it with %s, trained for %s",
            kind,
            as_of,
            current,
            trained,
        )
    if champ:
        return champ, "champion"
    log.warning(
        "no champion yet (no model passed the sanity gates); scoring with %s, the best "
        "holdout ROC-AUC of the newest training run",
        current,
    )
    return current, "no_champion_best_of_newest_run_failed_gates"


def _best_of_newest_run(metas: dict[str, dict]) -> str:
    """Of the versions trained for the newest as_of (LightGBM and its baseline challenger),
    the one with the best holdout ROC-AUC; the newest version when none has one."""
    versions = list(metas)
    newest_as_of = metas[versions[-1]].get("as_of")
    scored = [
        (auc, i)
        for i, m in enumerate(metas.values())
        if m.get("as_of") == newest_as_of
        and isinstance(auc := m.get("metrics", {}).get("roc_auc"), int | float)
    ]
    if not scored:
        return versions[-1]
    return versions[max(scored)[1]]


def load_booster(model_dir: Path, version: str, kind: str) -> lgb.Booster:
    """The LightGBM model of a registered ``version`` (``kind`` names it in the error)."""
    path = model_dir / version / "model.txt"
    if not path.exists():
        raise FileNotFoundError(f"no {kind} model {version!r} in {model_dir}")
    return lgb.Booster(model_file=str(path))


def version_id(as_of: dt.date, *parts: str, prefix: str = "") -> str:
    """``[<prefix>-]<as_of>-<sha256(parts)[:8]>``: retraining on the same data gives the same
    version; the prefix names a non-LightGBM champion (``baseline-rfm_logistic``)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
    return (f"{prefix}-" if prefix else "") + f"{as_of:%Y%m%d}-{digest.hexdigest()[:8]}"


@dataclass(frozen=True)
class Contest:
    """How a model's holdout score is compared with the champion's (words for the reason)."""

    metric: str  # e.g. "ROC-AUC", "MAP@k"
    champion_key: str  # decision key holding the champion's score on the same rows
    rows: str  # what both are judged on, e.g. "this holdout", "this week"
    margin: float  # gain over the champion needed to replace it
    errors: tuple[type[BaseException], ...] = (FileNotFoundError, ValueError, KeyError)


def decide(
    model_dir: Path,
    version: str,
    gates_ok: bool,
    score: float | None,
    champion_score: Callable[[str], float],
    contest: Contest,
) -> dict:
    """Champion/challenger: ``version`` replaces the champion only if it passed its gates and
    beats the champion (``champion_score(champion_version)``, on the same rows) by the margin."""
    current = champion_version(model_dir)
    decision: dict = {"previous_champion": current, contest.champion_key: None}
    if not gates_ok:
        return decision | {"promoted": False, "reason": "failed sanity gates"}
    if current is None:
        return decision | {"promoted": True, "reason": "first model to pass the sanity gates"}
    if current == version:
        return decision | {
            "promoted": False,
            "reason": "identical to the champion (same version)",
        }
    try:
        champ = champion_score(current)
    except contest.errors as exc:
        reason = f"champion {current} cannot be evaluated on {contest.rows} ({exc}); replacing it"
        return decision | {"promoted": True, "reason": reason}
    decision[contest.champion_key] = champ
    name, margin = contest.metric, contest.margin
    if score >= champ + margin:
        reason = f"{name} {score:.4f} >= champion {champ:.4f} + margin {margin}"
        return decision | {"promoted": True, "reason": reason}
    reason = f"{name} {score:.4f} < champion {champ:.4f} + margin {margin}; champion kept"
    return decision | {"promoted": False, "reason": reason}


def promote(
    model_dir: Path,
    kind: str,
    as_of: dt.date,
    model_parts: Sequence[str],
    *,
    gates_ok: bool,
    score: float | None,
    champion_score: Callable[[str], float],
    contest: Contest,
    metadata: Callable[[str, dict], dict],
    write_model: Callable[[Path], None],
    prefix: str = "",
) -> tuple[str, dict]:
    """Version, decide, register, point the champion: the one promotion step of both models.

    ``model_parts`` (the model's text, …) make the version id; ``metadata(version,
    decision)`` gives ``metadata.json``; ``write_model(folder)`` writes the model files.
    The folder is complete before ``champion.json`` points at it. Returns (version, decision).
    A classical baseline that the model did not beat is promoted the same way (``prefix``
    ``baseline-<name>`` in its version; :mod:`ml.churn.baseline_model`).
    """
    version = version_id(as_of, *model_parts, prefix=prefix)
    decision = decide(model_dir, version, gates_ok, score, champion_score, contest)
    meta = metadata(version, decision)
    folder = model_dir / version
    folder.mkdir(parents=True, exist_ok=True)
    write_model(folder)
    write_json(folder / "metadata.json", meta)
    log.info("registered %s model %s in %s", kind, version, folder)
    if decision["promoted"]:
        set_champion(model_dir, version, decision["reason"])
    else:
        log.info("model %s not promoted: %s", version, decision["reason"])
    return version, decision
