"""The CLV model's registry folders: ``<model_dir>/clv/<version>/`` holds ``model.txt``
(LightGBM) or ``baseline.json`` (a baseline champion: which method), and ``metadata.json``
(label window, horizon, feature spec, holdout metrics). Versions, the champion pointer and
promotion are :mod:`ml.common.registry`'s, as for churn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb

from ml.churn.features import FeatureSpec
from ml.common.registry import load_booster

KIND = "clv"
LIGHTGBM = "lightgbm"


@dataclass
class LoadedClv:
    version: str
    method: str  # "lightgbm" or a baseline name (ml.clv.baselines.NAMES)
    booster: lgb.Booster | None
    spec: FeatureSpec | None
    metadata: dict

    @property
    def label_days(self) -> int:
        return int(self.metadata["label_days"])


def write_model(folder: Path, booster: lgb.Booster) -> None:
    booster.save_model(str(folder / "model.txt"))


def write_baseline(folder: Path, name: str) -> None:
    (folder / "baseline.json").write_text(json.dumps({"method": name}))


def load(model_dir: Path, version: str) -> LoadedClv:
    folder = model_dir / version
    if not (folder / "metadata.json").exists():
        raise FileNotFoundError(f"no CLV model {version!r} in {model_dir}")
    metadata = json.loads((folder / "metadata.json").read_text())
    if (folder / "baseline.json").exists():
        method = json.loads((folder / "baseline.json").read_text())["method"]
        return LoadedClv(version, method, None, None, metadata)
    booster = load_booster(model_dir, version, KIND)
    return LoadedClv(
        version, LIGHTGBM, booster, FeatureSpec.from_dict(metadata["features"]), metadata
    )
