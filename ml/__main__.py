"""Command line for the ML stage: ``python -m ml MODEL ACTION [--as-of DATE]``.

MODEL is ``churn`` (who is about to stop buying), ``clv`` (what each customer will spend
in the next C720_CLV_HORIZON_DAYS days) or ``recs`` (next products to offer);
ACTION is ``train`` (fit, evaluate against baselines, register; the new model becomes the
champion only if it wins), ``score`` (write today's scores with the champion; never trains)
or ``report`` (re-render a report). Training and scoring are separate on purpose: train
weekly, score daily. Running the stages in order is the orchestrator's job.

Examples::

    python -m ml churn train  --as-of 2026-06-30   # train + evaluate + register a churn model
    python -m ml churn score  --as-of 2026-06-30   # champion → ml.churn_predictions
    python -m ml churn report                      # re-render the champion's HTML report
    python -m ml clv train    --as-of 2026-06-30   # train + evaluate + register a CLV model
    python -m ml clv score    --as-of 2026-06-30   # champion → ml.clv_predictions
    python -m ml recs train   --as-of 2026-06-30   # train + evaluate + register the ranker
    python -m ml recs score   --as-of 2026-06-30   # champion ranker → ml.product_recommendations
    python -m ml recs report  --as-of 2026-06-30   # re-render that date's evaluation report

Settings come from ``C720_*`` environment variables (see customer720/settings.py and
ml/common/config.py); e.g. ``C720_CHURN_HORIZON_DAYS=60`` changes the churn definition.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import inspect
import json
import logging
import sys

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-06-30") from exc


def _as_of(p: argparse.ArgumentParser, required: bool = True, help: str | None = None) -> None:
    p.add_argument(
        "--as-of",
        type=_date,
        required=required,
        metavar="YYYY-MM-DD",
        help=help or "logical date of the run (the latest feature cutoff to use)",
    )


Actions = argparse._SubParsersAction  # what add_subparsers returns


def _model(models: Actions, name: str, help: str, description: str) -> Actions:
    """MODEL's parser; returns its ACTION subparsers."""
    parser = models.add_parser(name, help=help, description=description)
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")


def _train(actions: Actions, step: str, help: str) -> None:
    """MODEL train --as-of: runs ``step`` ("module:function", imported only then)."""
    p = actions.add_parser("train", help=help)
    _as_of(p)
    p.set_defaults(step=step)


def _score(actions: Actions, step: str, help: str, versioned: bool = False) -> None:
    """MODEL score --as-of [--model-version when ``versioned``]: runs ``step``."""
    p = actions.add_parser("score", help=help)
    _as_of(p)
    if versioned:
        p.add_argument(
            "--model-version", help="score with this registered version instead of the champion"
        )
    p.set_defaults(step=step)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ml",
        description="customer720 ML: a churn model and product recommendations, each with "
        "train (weekly), score (daily) and report. Reads ml.customer_features and marts.* "
        "from the warehouse (C720_WAREHOUSE), writes ml.churn_predictions / "
        "ml.product_recommendations, models to C720_MODEL_DIR and reports to "
        "C720_REPORTS_DIR.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:" + __doc__.split("Examples::", 1)[1],
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")

    churn = _model(
        models,
        "churn",
        help="churn model: train | score | report",
        description="The churn model: probability that a customer places no order in the "
        "next C720_CHURN_HORIZON_DAYS days, with a risk band and the top reasons.",
    )
    _train(
        churn,
        "ml.churn.train:train_churn",
        help="train, evaluate and register a churn model; the champion is replaced only "
        "if the new model beats it on the same holdout",
    )
    _score(
        churn,
        "ml.churn.score:score_churn",
        help="score every eligible customer with the champion model into "
        "ml.churn_predictions (re-running a date replaces its rows)",
        versioned=True,
    )
    p = churn.add_parser("report", help="re-render the HTML report of a churn model version")
    p.add_argument(
        "--model-version",
        help="version to report on (default: the newest model trained for --as-of, "
        "else the champion)",
    )
    _as_of(p, required=False)

    clv = _model(
        models,
        "clv",
        help="customer lifetime value: train | score",
        description="Customer lifetime value: expected net revenue of each customer in the "
        "next C720_CLV_HORIZON_DAYS days (LightGBM against a historical-average and a "
        "BG/NBD + Gamma-Gamma baseline; the champion scores).",
    )
    _train(
        clv,
        "ml.clv.train:train_clv",
        help="train a CLV model, compare it with both baselines on held-out customers and "
        "register it (champion only if it wins)",
    )
    _score(
        clv,
        "ml.clv.score:score_clv",
        help="CLV of every eligible customer with the champion into ml.clv_predictions "
        "(re-running a date replaces its rows)",
        versioned=True,
    )

    recs = _model(
        models,
        "recs",
        help="product recommendations: train | score | report",
        description="Product recommendations: candidates from purchase and web history, "
        "ranked by a LightGBM LambdaRank model (the champion), top 10 per active customer.",
    )
    _train(
        recs,
        "ml.recs.train:train_recommender",
        help="train a LambdaRank recommender on past weeks, evaluate it on the last week "
        "against baselines and register it (champion only if it wins); writes no "
        "recommendations",
    )
    _score(
        recs,
        "ml.recs.score:recommend",
        help="write the top 10 products per active customer into "
        "ml.product_recommendations, ranked by the champion (the transparent blend "
        "until a ranker is registered); never trains",
    )
    p = recs.add_parser(
        "report",
        help="re-render the HTML evaluation report of the recommender trained for a date",
    )
    _as_of(p, help="the date the recommender was trained for")
    return parser


def run(args: argparse.Namespace) -> dict:
    if args.action == "report":
        if args.model == "churn":
            from ml.churn.report import rebuild_churn_report

            return {"report": str(rebuild_churn_report(args.model_version, args.as_of))}
        from ml.recs.report import rebuild_recommendation_report

        return {"report": str(rebuild_recommendation_report(args.as_of))}
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{args.model} {args.action}", total=None)
        module, name = args.step.split(":")
        step = getattr(importlib.import_module(module), name)
        kwargs: dict = {}
        if "model_version" in vars(args):  # `score --model-version`
            kwargs["version"] = args.model_version
        if "on_step" in inspect.signature(step).parameters:  # a step that reports progress
            kwargs["on_step"] = lambda s: progress.update(
                task, description=f"{args.model} {args.action}: {s}"
            )
        return step(args.as_of, **kwargs)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    for noisy in ("matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from ml.common.data import MissingInputError

    try:
        result = run(args)
    except (MissingInputError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
