"""Command line for the ML stage: ``python -m ml train|score|recommend|report --as-of DATE``.

Examples::

    python -m ml train --as-of 2026-06-30      # train + evaluate + register the churn model
    python -m ml score --as-of 2026-06-30      # champion → ml.churn_predictions
    python -m ml recommend --as-of 2026-06-30  # train/evaluate/register the ranker, then score
    python -m ml report                        # re-render the champion's HTML report
    python -m ml all --as-of 2026-06-30        # train, score and recommend in one go

Settings come from ``C720_*`` environment variables (see customer720/settings.py and
ml/config.py); e.g. ``C720_CHURN_HORIZON_DAYS=60`` changes the churn definition.
"""

from __future__ import annotations

import argparse
import datetime as dt
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ml",
        description="customer720 ML: churn model (train/score) and product recommendations. "
        "Reads ml.customer_features and marts.* from the warehouse (C720_WAREHOUSE), "
        "writes ml.churn_predictions / ml.product_recommendations, models to "
        "C720_MODEL_DIR and reports to C720_REPORTS_DIR.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::", 1)[1],
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_as_of(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument(
            "--as-of",
            type=_date,
            required=required,
            metavar="YYYY-MM-DD",
            help="logical date of the run (the latest feature cutoff to use)",
        )

    p = sub.add_parser(
        "train",
        help="train, evaluate and register a churn model; the champion "
        "is replaced only if the new model beats it on the same holdout",
    )
    with_as_of(p)
    p = sub.add_parser(
        "score",
        help="score every eligible customer with the champion model "
        "into ml.churn_predictions (re-running a date replaces its rows)",
    )
    with_as_of(p)
    p.add_argument(
        "--model-version", help="score with this registered version instead of the champion"
    )
    p = sub.add_parser(
        "recommend",
        help="train a LambdaRank recommender on past weeks, evaluate it on the last week "
        "against baselines, register it (champion gate), and write the top 10 products per "
        "active customer into ml.product_recommendations",
    )
    with_as_of(p)
    p.add_argument(
        "--no-eval",
        action="store_true",
        help="skip training and evaluation: score with the registered champion",
    )
    p = sub.add_parser("report", help="re-render the HTML report of a churn model version")
    p.add_argument(
        "--model-version",
        help="version to report on (default: the newest model trained for --as-of, "
        "else the champion)",
    )
    with_as_of(p, required=False)
    p = sub.add_parser("all", help="train, score and recommend for one date")
    with_as_of(p)
    return parser


def run(args: argparse.Namespace) -> dict:
    import ml.recommend as rec
    from ml import report, score, train

    if args.command == "report":
        path = report.rebuild_churn_report(args.model_version, args.as_of)
        return {"report": str(path)}
    steps = {"all": ["train", "score", "recommend"]}.get(args.command, [args.command])
    results: dict = {}
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)

        def step(name: str) -> None:
            progress.update(task, description=name)

        for name in steps:
            step(name)
            if name == "train":
                results["train"] = train.train_churn(
                    args.as_of, on_step=lambda s: step(f"train: {s}")
                )
            elif name == "score":
                results["score"] = score.score_churn(
                    args.as_of, version=getattr(args, "model_version", None)
                )
            elif name == "recommend":
                results["recommend"] = rec.recommend(
                    args.as_of, evaluate=not getattr(args, "no_eval", False)
                )
    return results if len(steps) > 1 else results[steps[0]]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    for noisy in ("matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from ml.data import MissingInputError

    try:
        result = run(args)
    except (MissingInputError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
