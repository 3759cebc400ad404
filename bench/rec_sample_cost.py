"""What sampling the recommender's training buyers costs: MAP@10 on the evaluation week of
rankers trained on every buyer of each training week and on samples of them.

    python bench/rec_sample_cost.py AS_OF N[,N...]   # N = C720_REC_TRAIN_CUSTOMERS, 0 = all

Uses the warehouse of ``C720_LOCAL_DIR``; models go to ``C720_MODEL_DIR/sample-N/`` (point
``C720_MODEL_DIR`` at a scratch folder so the registry's champion is left alone). The ALS
baseline is skipped: it does not depend on the sample.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys

import pandas as pd

from ml.common.config import RecConfig
from ml.recs import data as rec_data
from ml.recs.train import train_and_register


def main(as_of: str, sizes: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    at = pd.Timestamp(as_of)
    base = RecConfig.from_settings()
    d = rec_data.load(at.date())
    for n in map(int, sizes.split(",")):
        cfg = dataclasses.replace(
            base,
            train_customers=n,
            als=False,
            model_dir=base.model_dir.parent / f"sample-{n}" / "recommend",
        )
        run = train_and_register(d, at, cfg)
        row = {
            "train_customers": n,
            "train_rows": run["rows"]["train"],
            "map_at_10": round(run["offline"]["ranker"]["map_at_k"], 4),
            "map_gap_to_best_baseline_ci95": run.get("map_gap_to_best_baseline_ci95"),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
