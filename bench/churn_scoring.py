"""How long does churn scoring take for 100k customers, with SHAP-based top-3 reasons?

Times ``ml.churn.score.predict_frame`` — the whole per-customer work of ``python -m ml churn score``:
model matrix, calibrated probability, contributions, top-3 reason texts — on N feature
rows, for each way of computing the contributions:

- ``exact``: exact TreeSHAP, deduplicated per tree (``ml.model.contributions``, the
  default: the same values as LightGBM ``pred_contrib``, computed once per distinct
  decision pattern of each tree),
- ``lightgbm_pred_contrib``: LightGBM's ``pred_contrib`` on every row (the reference),
- ``path``: path (Saabas) contributions (``C720_ML_EXACT_REASONS=0``).

Rows: the feature rows of a trained warehouse (``ml.customer_features``, every cutoff),
each once, then resampled with their money amounts scaled (see ``_rows``) up to N rows: a
100k-customer company has rows like these (its own simulation, ingest and dbt build take
~10 minutes on this machine). The model: the
warehouse's champion churn model (or ``--model-version``). Also checks that the fast exact
contributions equal ``pred_contrib`` on the same rows. Example (the 10k simulator company
of ml/README.md)::

    C720_LOCAL_DIR=/tmp/churn-10k/local C720_SOURCES_DIR=/tmp/churn-10k/sources \\
        .venv/bin/python bench/churn_scoring.py --rows 100000

Prints wall and CPU seconds per variant (the best of ``--repeat`` rounds; each round runs
the variants back to back) and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


MONEY = ("monetary", "avg_order_value", "revenue_last_30d", "revenue_last_90d",
         "revenue_prior_90d", "revenue_trend_90d")  # fmt: skip


def _rows(source: pd.DataFrame, n: int) -> pd.DataFrame:
    """n feature rows like the source's: each source row once (as far as n goes), then
    resampled rows with their money amounts scaled by 0.8-1.25 (other customers like
    them), so the rows are about as distinct as a real company's — the exact contributions
    are computed once per distinct decision pattern, and copies would flatter them."""
    rng = np.random.default_rng(0)
    first = rng.permutation(len(source))[:n]
    extra = rng.integers(0, len(source), max(0, n - len(first)))
    out = source.iloc[np.concatenate([first, extra])].reset_index(drop=True)
    scale = np.where(np.arange(n) < len(first), 1.0, rng.uniform(0.8, 1.25, n))
    for col in MONEY:
        if col in out.columns:
            out[col] = (pd.to_numeric(out[col]).astype(float) * scale).round(2)
    out["customer_key"] = [f"c{i}" for i in range(n)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--model-version", default=None)
    parser.add_argument(
        "--variants",
        default="exact,path",
        help="comma-separated subset of exact, path, lightgbm_pred_contrib (the slow "
        "reference: ~2 minutes for 100k rows)",
    )
    args = parser.parse_args(argv)

    import ml.churn.score
    from ml.churn import model, registry
    from ml.churn.features import build_matrix
    from ml.churn.score import predict_frame
    from ml.common import data
    from ml.common.config import ChurnConfig

    cfg = ChurnConfig.from_settings()
    version = args.model_version or registry.resolve_scoring_version(cfg.model_dir)[0]
    loaded = registry.load_model(cfg.model_dir, version)
    features = _rows(data.load_features(), args.rows)
    n_trees = model._n_trees(loaded.booster)

    X = build_matrix(features.head(5000), loaded.spec)
    fast = model.contributions(loaded.booster, X, exact=True)
    ref = model.contributions(loaded.booster, X, exact=True, method="pred_contrib")
    max_diff = float(np.abs(fast.to_numpy() - ref.to_numpy()).max())
    distinct = int((~features.drop(columns=["customer_key"]).duplicated()).sum())

    # (config, contributions function) per variant
    variants = {
        "exact": (replace(cfg, exact_reasons=True), model.contributions),
        "lightgbm_pred_contrib": (
            replace(cfg, exact_reasons=True),
            partial(model.contributions, method="pred_contrib"),
        ),
        "path": (replace(cfg, exact_reasons=False), model.contributions),
    }
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        for name in chosen:
            variant_cfg, ml.churn.score.contributions = variants[name]
            start, cpu = time.perf_counter(), time.process_time()
            out = predict_frame(features, loaded, variant_cfg)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            assert len(out) == args.rows
            if name not in best or wall < best[name]["wall_s"]:
                best[name] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
    result = {
        "bench": "churn_scoring",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "distinct_feature_rows": distinct,
        "model_version": version,
        "trees": int(n_trees),
        "features": len(loaded.spec.names),
        "num_threads": cfg.num_threads,
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "max_abs_diff_exact_vs_pred_contrib_5000_rows": max_diff,
        "best_of": args.repeat,
        "variants": best,
    }
    for name, r in best.items():
        print(
            f"{name:>22}: {r['wall_s']:7.2f} s wall, {r['cpu_s']:7.2f} s CPU for {args.rows:,} rows"
        )
    print(f"exact vs pred_contrib: max |difference| {max_diff:.2e} on 5,000 rows")
    print(f"{distinct:,} distinct feature rows among the {args.rows:,}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"churn_scoring-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
