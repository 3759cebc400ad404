"""The churn model's registry folders: ``<model_dir>/churn/<version>/`` holds ``model.txt``,
``calibrator.joblib`` and ``metadata.json`` (with the :class:`FeatureSpec`), plus
``evaluated_model.txt`` / ``evaluated_calibrator.joblib`` when the model that scores is a
refit of the one the holdout judged (metadata ``deployed_refit``).

Versions, the champion pointer and the promotion step are shared with the recommender in
:mod:`ml.common.registry`; the names used with a churn model are importable from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import lightgbm as lgb

from ml.churn.features import FeatureSpec
from ml.common.registry import (  # noqa: F401 - the churn registry's names, in one place
    champion_version,
    list_versions,
    load_booster,
    resolve_scoring_version,
)

KIND = "churn"
BASELINE_TYPE = "baseline"  # metadata model_type prefix of a baseline champion


@dataclass
class LoadedModel:
    version: str
    booster: lgb.Booster
    calibrator: Any
    spec: FeatureSpec
    metadata: dict


EVALUATED = "evaluated_"  # file prefix of the evaluated model, where it is not the scoring one


def write_model(
    folder: Path, booster: lgb.Booster, calibrator: Any, evaluated: tuple | None = None
) -> None:
    """The model files of a churn version (``metadata.json`` is written by the registry):
    the model that scores, and ``evaluated`` (booster, calibrator) when that is another fit
    (the one the holdout judged, without the purged rows: ml.churn.train._deployed_model)."""
    booster.save_model(str(folder / "model.txt"))
    joblib.dump(calibrator, folder / "calibrator.joblib")
    if evaluated is not None:
        evaluated[0].save_model(str(folder / f"{EVALUATED}model.txt"))
        joblib.dump(evaluated[1], folder / f"{EVALUATED}calibrator.joblib")


def load_evaluated(model_dir: Path, version: str) -> tuple[lgb.Booster, Any]:
    """The (booster, calibrator) whose holdout metrics ``version`` registered, for scoring
    it as the champion on a later run's holdout like the challenger is scored: the deployed
    refit fitted a cutoff whose label window can reach into that holdout's (a retrain a few
    weeks later), the leak the purge keeps out of the challenger's score."""
    folder = model_dir / version
    if not (folder / f"{EVALUATED}model.txt").exists():
        model = load_model(model_dir, version)
        return model.booster, model.calibrator
    return (
        lgb.Booster(model_file=str(folder / f"{EVALUATED}model.txt")),
        joblib.load(folder / f"{EVALUATED}calibrator.joblib"),
    )


def load_model(model_dir: Path, version: str) -> LoadedModel:
    booster = load_booster(model_dir, version, KIND)
    folder = model_dir / version
    metadata = json.loads((folder / "metadata.json").read_text())
    return LoadedModel(
        version=version,
        booster=booster,
        calibrator=joblib.load(folder / "calibrator.joblib"),
        spec=FeatureSpec.from_dict(metadata["features"]),
        metadata=metadata,
    )


def is_baseline(model_dir: Path, version: str) -> bool:
    """A registered baseline champion (``baseline.joblib``, no LightGBM model)."""
    return (model_dir / version / "baseline.joblib").exists()


def write_baseline(folder: Path, model: Any) -> None:
    joblib.dump(model, folder / "baseline.joblib")


@dataclass
class LoadedBaseline:
    version: str
    model: Any  # ml.churn.baseline_model.BaselineModel
    metadata: dict


def load_any(model_dir: Path, version: str) -> LoadedModel | LoadedBaseline:
    """The LightGBM model or the baseline champion registered as ``version``."""
    if not is_baseline(model_dir, version):
        return load_model(model_dir, version)
    folder = model_dir / version
    return LoadedBaseline(
        version=version,
        model=joblib.load(folder / "baseline.joblib"),
        metadata=json.loads((folder / "metadata.json").read_text()),
    )
