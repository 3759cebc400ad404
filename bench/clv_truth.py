"""CLV against what customers really spent next: LightGBM vs both baselines, on revenue that
was not in the warehouse when the models were trained and scored.

    .venv/bin/python bench/clv_truth.py simulator [--scratch /tmp/clv-sim] [--customers 10000]
                                                  [--days 365] [--start 2024-01-01] [--retrain]
    .venv/bin/python bench/clv_truth.py cdnow     [--scratch /tmp/clv-cdnow] [--file CDNOW_master.txt]

**simulator**: a company of 10,000 customers × 365 days (seed 7) goes through ingest and
dbt as the pipeline runs it; the CLV model is trained and every eligible customer scored
at its last day with only that year loaded (N = 365; ``--days 730`` for two years). Then
the simulator appends the next 365 days of the same company, the CRM is ingested again and
``fct_orders`` rebuilt, and each customer's realised net revenue in (as_of, as_of + 365]
is the truth. That year must end before today (``--start``): ingest quarantines
timestamps after the load.

**cdnow**: the real CDNOW purchases (examples/cdnow) through the bring-your-own-data path;
models trained with as_of 1997-12-31 (labels only from windows that ended by then) and
scored there with N = 182 days (26 weeks); the truth is each customer's spend in the 26
weeks after, the standard CDNOW question.

Both print Spearman, MAE, the calibration of totals (sum predicted / sum realised) and the
top-decile share for LightGBM, the historical average and BG/NBD + Gamma-Gamma, on every
scored customer, and where the error comes from (customers who bought nothing vs who did).
Steps already done in the scratch folder are not redone; ``--retrain`` trains and scores
again with the current code on the same data (the simulator keeps a copy of its warehouse
before the truth year for that, ``history.duckdb``): a model change is measured in minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CDNOW = ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"


def _point_at(scratch: Path, **extra: str) -> None:
    for key in [k for k in os.environ if k.startswith("C720_")]:
        del os.environ[key]
    os.environ.update(C720_LOCAL_DIR=str(scratch), C720_ML_NUM_THREADS="2", **extra)


def _python(args: list[str]) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, env=os.environ.copy())


def compare(as_of: dt.date, horizon_days: int, scratch: Path) -> dict:
    """Train at ``as_of``, score every eligible customer with all three models for
    ``horizon_days``; saved to ``<scratch>/clv_predictions.csv``."""
    from ml.clv import registry as clv_registry
    from ml.clv.baselines import Probabilistic, historical_average
    from ml.clv.labels import eligible_history
    from ml.clv.score import predict_clv
    from ml.clv.train import train_clv
    from ml.common.config import ClvConfig

    cfg = ClvConfig.from_settings()
    summary = train_clv(as_of, cfg)
    model = clv_registry.load(cfg.model_dir, summary["version"])  # the LightGBM model
    hist = eligible_history([as_of], cfg.inactivity_days)
    fitted = Probabilistic(hist)
    out = predict_clv(model, hist, fitted, horizon_days)[["customer_key", "clv"]]
    out = out.rename(columns={"clv": "lightgbm"})
    out["historical_average"] = historical_average(hist, horizon_days)
    out["bgnbd_gamma_gamma"] = fitted.revenue(horizon_days)
    out.to_csv(scratch / "clv_predictions.csv", index=False)
    (scratch / "clv_train.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _keep_copy(target: Path) -> None:
    """Copy the warehouse file once everything is in it: dbt-duckdb keeps its connection
    open in-process, so recent writes may still be in the write-ahead log."""
    from customer720 import warehouse
    from customer720.settings import get_settings

    with warehouse.duckdb_connection() as con:
        con.execute("checkpoint")
    shutil.copyfile(get_settings().warehouse_path, target)


def _forget_models(scratch: Path) -> None:
    """--retrain: drop the predictions and the CLV models of the last run, so the new
    model is trained from scratch rather than contested against the old one."""
    (scratch / "clv_predictions.csv").unlink(missing_ok=True)
    for folder in (scratch / "models" / "clv", scratch / "reports" / "clv"):
        shutil.rmtree(folder, ignore_errors=True)


def save_truth(as_of: dt.date, horizon_days: int, scratch: Path) -> None:
    """Each customer's realised net revenue in (as_of, as_of + N] → ``<scratch>/truth.csv``."""
    from ml.clv.labels import future_revenue

    truth = future_revenue([as_of], horizon_days)[["customer_key", "revenue"]]
    truth.to_csv(scratch / "truth.csv", index=False)


def realised(as_of: dt.date, horizon_days: int, scratch: Path) -> None:
    """Print each model's figures against the realised revenue in (as_of, as_of + N]."""
    import pandas as pd

    from ml.common.evaluate import regression_metrics

    preds = pd.read_csv(scratch / "clv_predictions.csv", dtype={"customer_key": str})
    truth = pd.read_csv(scratch / "truth.csv", dtype={"customer_key": str})
    frame = preds.merge(truth, on="customer_key", how="left").fillna({"revenue": 0.0})
    train = json.loads((scratch / "clv_train.json").read_text())
    print(
        f"as_of {as_of}, horizon {horizon_days} days, label window {train['label_days']} days; "
        f"{len(frame):,} customers scored, realised total {frame['revenue'].sum():,.0f}, "
        f"{(frame['revenue'] > 0).mean():.1%} bought again"
    )
    print(
        f"{'model':<22}{'Spearman':>10}{'MAE':>10}{'total ratio':>13}{'top-10% share':>15}"
        f"{'MAE from 0-spend':>18}{'MAE from buyers':>17}{'Poisson dev.':>14}"
    )
    y = frame["revenue"].to_numpy()
    buyer = y > 0
    results = {}
    for name in ("lightgbm", "historical_average", "bgnbd_gamma_gamma"):
        pred = frame[name].to_numpy()
        m = regression_metrics(y, pred)
        # where the MAE comes from: its sum over customers who spent nothing vs the rest
        err = abs(y - pred) / len(y)
        m["mae_zero_spend"], m["mae_buyers"] = float(err[~buyer].sum()), float(err[buyer].sum())
        results[name] = m
        print(
            f"{name:<22}{m['spearman']:>10.4f}{m['mae']:>10.2f}{m['total_ratio']:>13.3f}"
            f"{m['top_decile_share']:>15.3f}{m['mae_zero_spend']:>18.2f}{m['mae_buyers']:>17.2f}"
            f"{m['poisson_deviance']:>14.2f}"
        )
    # the reference MAE rewards: revenue is mostly 0, so its MAE-best guess is 0 for most
    zero = regression_metrics(y, pd.Series(0.0, index=frame.index).to_numpy())
    print(f"{'nothing (all 0)':<22}{'':>10}{zero['mae']:>10.2f}{zero['total_ratio']:>13.3f}")
    results["all_zero"] = zero
    h = train["metrics"]
    print(
        "training holdout (held-out customers, label window): "
        + ", ".join(
            f"{k} Spearman {v['spearman']:.4f} Poisson dev. {v['poisson_deviance']:.2f} "
            f"MAE {v['mae']:.2f}"
            for k, v in h.items()
        )
    )
    (scratch / "clv_truth.json").write_text(json.dumps(results, indent=1))


def _simulate(simulate, argv: list[str]) -> None:
    if simulate([*argv, "-q"]):
        raise SystemExit(f"simulator {' '.join(argv)} failed")


def simulator(args: argparse.Namespace) -> None:
    scratch = Path(args.scratch).resolve()
    _point_at(scratch)
    from customer720.dbt import run_dbt
    from orchestrate.stages import run_stage
    from simulator.__main__ import main as simulate

    sources = scratch / "sources"
    history = scratch / "history.duckdb"  # the warehouse before the truth year
    start = dt.date.fromisoformat(args.start)
    first = start + dt.timedelta(days=args.days - 1)
    if args.retrain:
        _forget_models(scratch)
    if not history.exists():
        if (scratch / "appended").exists():
            raise SystemExit(
                f"{scratch} already holds the second year: the models cannot be trained on "
                "the first year alone any more; start over with an empty --scratch"
            )
        if not (sources / "simulation.json").exists():
            _simulate(
                simulate,
                [
                    "--customers",
                    str(args.customers),
                    "--days",
                    str(args.days),
                    "--start",
                    args.start,
                ],
            )
        for stage in ("ingest_crm", "ingest_events", "marts"):
            run_stage(stage, first)
        _keep_copy(history)
    end = first + dt.timedelta(days=365)
    if not (scratch / "appended").exists():
        _simulate(simulate, ["--append-days", "365", "--out", str(sources)])
        (scratch / "appended").write_text(end.isoformat())
    if not (scratch / "truth.csv").exists():
        run_stage("ingest_crm", end)  # orders only: the truth needs no web events
        run_dbt("build", as_of=end, select="+fct_orders", exclude="tag:needs_scores")
        save_truth(first, 365, scratch)
    if not (scratch / "clv_predictions.csv").exists():
        _point_at(scratch, C720_WAREHOUSE=str(history))
        compare(first, 365, scratch)
    realised(first, 365, scratch)


def cdnow(args: argparse.Namespace) -> None:
    scratch = Path(args.scratch).resolve()
    horizon = 182
    _point_at(
        scratch,
        C720_CRM_URL=str(scratch / "crm"),
        C720_NO_EVENTS="1",
        C720_CHURN_HORIZON_DAYS=str(horizon),
        C720_CLV_HORIZON_DAYS=str(horizon),
    )
    as_of = dt.date(1997, 12, 31)
    if args.retrain:
        _forget_models(scratch)
    if not (scratch / "clv_predictions.csv").exists():
        if not (scratch / "built").exists():
            _python(
                ["examples/cdnow/convert.py", "--input", args.file, "--out", str(scratch / "crm")]
            )
            _python(["-m", "ingest", "crm"])
            from customer720.dbt import run_dbt

            # features for the data's last day: the grid holds 1997-12-31 (as_of - 182)
            run_dbt(
                "build",
                as_of=dt.date(1998, 7, 1),
                select="+customer_features",
                exclude="tag:needs_scores",
                args=["--indirect-selection", "cautious"],
            )
            (scratch / "built").write_text("1")
        if not (scratch / "truth.csv").exists():
            save_truth(as_of, horizon, scratch)
        compare(as_of, horizon, scratch)
    realised(as_of, horizon, scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="data", required=True)
    p = sub.add_parser("simulator", help="simulated company, truth = the next simulated year")
    p.add_argument("--scratch", default="/tmp/clv-sim")
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--days", type=int, default=365)
    # the truth year must end before today: ingest quarantines timestamps after the load
    p.add_argument("--start", default="2024-01-01", help="first simulated day")
    p.set_defaults(run=simulator)
    p = sub.add_parser("cdnow", help="CDNOW, truth = the 26 weeks after 1997-12-31")
    p.add_argument("--scratch", default="/tmp/clv-cdnow")
    p.add_argument("--file", default=str(CDNOW))
    p.set_defaults(run=cdnow)
    for p in sub.choices.values():
        p.add_argument(
            "--retrain", action="store_true", help="train and score again on the kept data"
        )
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
