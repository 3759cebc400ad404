"""``python -m app serve`` (make app) and ``python -m app docs`` (make docs)."""

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
    from app.docs import build_docs

    index = build_docs(settings)
    print(f"docs: {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
