"""Command line: ``python -m simulator --help`` and ``python -m simulator oracle --help``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from customer720.settings import get_settings
from simulator.api import append, generate
from simulator.config import (
    DIRTY_MODES,
    STATIONARY_WARMUP_DAYS,
    SimulationConfig,
    parse_dirty,
)
from simulator.export import EXPORT_DAYS
from simulator.oracle import churn_auc

log = logging.getLogger("simulator")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-01-01"
        ) from None


def generate_parser() -> argparse.ArgumentParser:
    modes = "\n".join(f"  {name:<20} {text}" for name, text in DIRTY_MODES.items())
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Simulate a demo company: a CRM database (contacts, orders, tickets, emails, surveys)\n"
            "and web/app event files (gzip NDJSON, one folder per day), plus the ground truth\n"
            "(who is who, who churned, what was made dirty) for evaluating the pipeline.\n\n"
            "Run `python -m simulator oracle --help` for the churn-predictability check."
        ),
        epilog=(
            "examples:\n"
            "  python -m simulator --customers 10000 --days 365 --seed 7\n"
            "  python -m simulator --append-days 1          # one more day, for incremental runs\n"
            "  python -m simulator --export --customers 3000  # like a retail export, 270 days\n"
            "  python -m simulator --dirty malformed_json=0.01,duplicate_crm_rows=0.02\n"
            "  python -m simulator --stationary --customers 1000  # steady, 2 years of history\n"
            "  python -m simulator --append-days 1 --dirty malformed_json=0.3  # a bad day\n\n"
            f"dirty modes (rate = share of affected records, 0 to 0.5):\n{modes}"
        ),
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=10_000,
        help="number of CRM persons to simulate (default 10000); about 40%% more anonymous-only web visitors are added",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=None,
        help=f"number of days to simulate from --start (default 365; {EXPORT_DAYS} with --export)",
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="export mode: a company that looks like a real retail export - text ids, no "
        "product categories, returns as credit notes, under a year of history "
        "(simulator/README.md)",
    )
    parser.add_argument(
        "--text-ids",
        action="store_true",
        help="only the ids of export mode: CRM and event ids as text (Salesforce, Stripe, "
        "Shopify forms) instead of integers",
    )
    parser.add_argument(
        "--price-shift",
        metavar="FACTOR@YYYY-MM-DD",
        help="injected drift for model monitoring: from that day on every price is multiplied "
        "by FACTOR (e.g. 2.0@2024-09-01); later appends keep it",
    )
    parser.add_argument(
        "--stationary",
        action="store_true",
        help=f"a company in steady state, for judging models over time: people join at a "
        f"constant rate that balances churn, so the population's size and mix (personas, "
        f"tenure, the share already gone) do not drift; no season (every day has the "
        f"year's mean demand); and the {STATIONARY_WARMUP_DAYS} days before --start are "
        f"simulated too, as its history (orders, events and CRM rows before --start; "
        f"simulation.json: history_start). Without it everyone who signed up before "
        f"--start is there on day one, without history, and the company ages",
    )
    parser.add_argument(
        "--start",
        type=_date,
        default=date(2024, 1, 1),
        help="first simulated day, YYYY-MM-DD (default 2024-01-01); with --stationary the "
        "first day after its history",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=7,
        help="random seed; the same seed gives the same company (default 7)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder for crm.sqlite, events/, truth/ and simulation.json "
        "(default: C720_SOURCES_DIR or .local/sources)",
    )
    parser.add_argument(
        "--crm-url",
        default=None,
        help="write the CRM to this SQLAlchemy URL instead of <out>/crm.sqlite, "
        "e.g. postgresql+psycopg2://user:pass@host:5432/crm (its seven tables are replaced); "
        "default: C720_CRM_URL when that is set",
    )
    parser.add_argument(
        "--append-days",
        type=int,
        default=None,
        metavar="N",
        help="do not start over: add the next N days to the company already in --out "
        "(new event folders, updated CRM rows); --customers/--days/--seed are then taken from that run, "
        "and so is --dirty unless given (then it applies to the new days only: a bad delivery)",
    )
    parser.add_argument(
        "--dirty",
        default="",
        metavar="MODE=RATE,...",
        help="inject bad data, e.g. malformed_json=0.01,missing_ids=0.005 (modes listed below; off by default)",
    )
    parser.add_argument(
        "--gzip-level",
        type=int,
        default=3,
        choices=range(1, 10),
        metavar="1-9",
        help="gzip compression level of event files: 1 fastest, 9 smallest (default 3)",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when --out already holds a company made with the same "
        "--customers/--days/--start/--seed/--dirty/--stationary (what `make run` uses)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings only")
    return parser


def oracle_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator oracle",
        description=(
            "How predictable is churn in the simulated company? For customers with an order before\n"
            "the cutoff, label churn = no (non-cancelled) order in the next HORIZON days, and print\n"
            "the AUC of the true latent hazard (the best any model could do) and of recency alone."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder of a simulated company (default: C720_SOURCES_DIR or .local/sources)",
    )
    parser.add_argument(
        "--cutoff",
        type=_date,
        default=None,
        help="scoring date YYYY-MM-DD (default: the last simulated day minus the horizon)",
    )
    parser.add_argument(
        "--horizon", type=int, default=90, help="label window in days after the cutoff (default 90)"
    )
    return parser


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False)],
    )


def run_oracle(argv: list[str]) -> int:
    args = oracle_parser().parse_args(argv)
    out = args.out or get_settings().sources_dir
    cutoff = args.cutoff
    if cutoff is None:
        sim = out / "simulation.json"
        if not sim.exists():
            raise SystemExit(
                f"error: no simulation.json in {out}; generate a company first or pass --out"
            )
        end = date.fromisoformat(json.loads(sim.read_text())["end"])
        cutoff = date.fromordinal(end.toordinal() - args.horizon)
    try:
        result = churn_auc(out, cutoff, args.horizon)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"error: {exc}") from None
    print(json.dumps(result, indent=2))
    return 0


def _same_company(out: Path, args: argparse.Namespace, dirty: dict[str, float]) -> bool:
    meta = Path(out) / "simulation.json"
    if not meta.exists():
        return False
    made = json.loads(meta.read_text())
    wanted = {
        "customers": args.customers,
        "days": args.days,
        "export": args.export,
        "text_ids": args.text_ids or args.export,
        "seed": args.seed,
        "start": args.start.isoformat(),
        "dirty_modes": dirty,
        "stationary": args.stationary,
    }
    return all(made.get(key, False) == value for key, value in wanted.items())


def run_generate(argv: list[str]) -> int:
    args = generate_parser().parse_args(argv)
    if args.days is None:
        args.days = EXPORT_DAYS if args.export else 365
    _setup_logging(args.quiet)
    out = args.out or get_settings().sources_dir
    # The pipeline reads the CRM from C720_CRM_URL, so an explicit setting is where we write it.
    settings = get_settings()
    crm_url = args.crm_url or (settings.crm_url if settings.crm_url_is_set else None)
    try:
        dirty = parse_dirty(args.dirty)
    except ValueError as exc:
        raise SystemExit(f"error: --dirty: {exc}") from None
    if args.if_missing and args.append_days is None and _same_company(out, args, dirty):
        log.warning("%s already holds this company (simulation.json); not regenerating it", out)
        return 0
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=args.quiet,
    ) as bar:
        task = bar.add_task("simulating days", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            if args.append_days is not None:
                summary = append(
                    out,
                    args.append_days,
                    crm_url=crm_url,
                    progress=progress,
                    dirty=dirty if args.dirty else None,
                )
            else:
                config = SimulationConfig(
                    customers=args.customers,
                    days=args.days,
                    seed=args.seed,
                    start=args.start,
                    out=out,
                    crm_url=crm_url,
                    dirty=dirty,
                    gzip_level=args.gzip_level,
                    export=args.export,
                    text_ids=args.text_ids,
                    stationary=args.stationary,
                    **_price_shift(args.price_shift),
                )
                summary = generate(config, progress=progress)
        except (ValueError, FileNotFoundError) as exc:
            raise SystemExit(f"error: {exc}") from None
    log.info(
        "simulated %s .. %s into %s: %s events, %s orders",
        summary["start"],
        summary["end"],
        out,
        summary["events"]["lines"],
        summary["rows"]["orders"],
    )
    return 0


def _price_shift(text: str | None) -> dict:
    """``FACTOR@YYYY-MM-DD`` as SimulationConfig fields (a clear error for other input)."""
    if not text:
        return {}
    factor, sep, day = text.partition("@")
    try:
        return {"price_shift_factor": float(factor), "price_shift_from": date.fromisoformat(day)}
    except ValueError:
        raise ValueError(
            f"--price-shift {text!r}: write FACTOR@YYYY-MM-DD, e.g. 2.0@2024-09-01"
        ) from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "oracle":
        return run_oracle(argv[1:])
    return run_generate(argv)


if __name__ == "__main__":
    sys.exit(main())
