"""``python -m app serve`` (make app), ``python -m app docs`` (make docs) and
``python -m app metrics`` (the semantic layer's metrics on the published snapshot)."""

from __future__ import annotations

import argparse
import logging

from customer720.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="the web app on the published snapshot")
    serve.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=settings.app_port, help="C720_APP_PORT")
    serve.add_argument("--workers", type=int, default=1)
    sub.add_parser("docs", help="dbt docs, data docs and model reports as one offline site")
    metrics = sub.add_parser(
        "metrics",
        help="query the metrics (revenue, customers, churn risk, revenue at risk, ...)",
        description="Metrics defined once in dbt_project/models/marts/semantic/, computed by "
        "MetricFlow on the published snapshot. Without metric names: the list of metrics.",
        epilog="examples:\n"
        "  python -m app metrics\n"
        "  python -m app metrics revenue purchases --by metric_time__month\n"
        "  python -m app metrics customers churn_risk revenue_at_risk --by customer__persona\n"
        "  python -m app metrics revenue --by order__channel "
        "--where \"{{ TimeDimension('metric_time', 'day') }} >= '2024-06-01'\"",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    metrics.add_argument("names", nargs="*", help="metric names (none: list them)")
    metrics.add_argument(
        "--by",
        nargs="+",
        default=[],
        help="group by: metric_time__day|week|month|quarter|year, customer__persona, "
        "customer__churn_risk_band, order__channel, ...",
    )
    metrics.add_argument("--where", action="append", default=[], help="a MetricFlow filter")
    metrics.add_argument("--order", nargs="+", default=[], help="order by (prefix - for desc)")
    metrics.add_argument("--limit", type=int)
    metrics.add_argument("--sql", action="store_true", help="print the SQL MetricFlow wrote")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        import uvicorn

        print(f"customer720 app on http://{args.host}:{args.port} (snapshot {settings.published})")
        uvicorn.run(
            "app.web:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            access_log=False,
        )
        return 0
    if args.command == "metrics":
        return _metrics(args, settings)
    from app.docs import build_docs

    index = build_docs(settings)
    print(f"docs: {index}")
    return 0


def _metrics(args: argparse.Namespace, settings) -> int:
    import pandas as pd

    from app import metrics

    with pd.option_context("display.max_rows", 200, "display.width", 200):
        if not args.names:
            print(metrics.catalogue(settings).to_string(index=False))
            return 0
        try:
            result = metrics.query(
                args.names, args.by, args.where, args.order, args.limit, settings=settings
            )
        except metrics.MetricsUnavailable as err:
            print(f"error: {err}")
            return 2
        if args.sql:
            print(result.sql)
        print(result.frame.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
