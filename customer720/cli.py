"""What every stage's command line shares: logging to the terminal, telemetry off."""

from __future__ import annotations

import argparse
import logging

from rich.logging import RichHandler

from customer720.settings import apply_tool_env

QUIET_LOGGERS = ("great_expectations", "great_expectations._docs_decorators", "sqlalchemy")


def setup(verbose: bool = False) -> None:
    """Configure logging for a command-line run and export the settings to child tools."""
    apply_tool_env()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def stage_parser(
    prog: str, description: str, epilog: str
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """A stage's command line: examples shown as written, ``-v``, one subcommand required."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser, parser.add_subparsers(dest="command", required=True)
