"""Convert the CDNOW purchase log into a customer720 bring-your-own-data CRM folder.

CDNOW (Fader & Hardie): every purchase of the 23,570 customers of the CD retailer CDNOW who
first bought in Q1 1997, followed to 1998-06-30. The file is whitespace separated with one
header line: ``customer_id date number_of_cds dollar_value`` (``date`` as YYYYMMDD); several
rows may share a customer and a day (separate transactions).

It writes the two required tables of the source contract (``ingest/contract.json``):

- ``contacts.csv``: contact_id (= customer_id), created_at (= the first purchase day),
  updated_at (= created_at);
- ``orders.csv``: order_id (= line number in the file, 1-based), contact_id, ordered_at,
  status ``delivered``, total_amount (= dollar_value), updated_at (= ordered_at).

The file has dates only. Every purchase is placed at 12:00:00 of its day, so under the
project's time convention (cutoff date D = the instant D 00:00) a purchase on day D is the
first day of D's label window, never part of D's features; a contact is created at 00:00
of its first purchase day (before that purchase).

Usage::

    python examples/cdnow/convert.py --out /tmp/cdnow_crm
    python examples/cdnow/convert.py --input /path/to/CDNOW_master.txt --out exports/

The data is never copied into the repository: the default input is the shared copy in
``../shared/data/cdnow`` (override with ``--input`` or ``CDNOW_FILE``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import pandas as pd

log = logging.getLogger("cdnow")

# the shared copy beside the repository: <repo>/../shared/data/cdnow/CDNOW_master.txt
SHARED_COPY = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
DEFAULT_INPUT = Path(os.environ.get("CDNOW_FILE", str(SHARED_COPY)))
ORDER_TIME = pd.Timedelta(hours=12)  # dates only in the file: purchases at noon
DATA_END = pd.Timestamp("1998-06-30")


def read_cdnow(path: Path) -> pd.DataFrame:
    """The purchase log as customer_id, date, number_of_cds, dollar_value (one row a line)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"CDNOW file not found: {path}. Pass --input (or set CDNOW_FILE) to "
            "CDNOW_master.txt (see /work/shared/data/README.md)."
        )
    df = pd.read_csv(
        path,
        sep=r"\s+",
        header=0,
        names=["customer_id", "date", "number_of_cds", "dollar_value"],
        dtype={"customer_id": "int64", "date": "string", "number_of_cds": "int64"},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    df["dollar_value"] = pd.to_numeric(df["dollar_value"]).astype(float)
    return df


def to_contract(purchases: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(contacts, orders) frames in the contract's column names and types."""
    orders = pd.DataFrame(
        {
            "order_id": pd.RangeIndex(1, len(purchases) + 1),
            "contact_id": purchases["customer_id"].to_numpy(),
            "ordered_at": purchases["date"] + ORDER_TIME,
            "status": "delivered",
            "total_amount": purchases["dollar_value"].round(2).to_numpy(),
        }
    )
    orders["updated_at"] = orders["ordered_at"]
    first = purchases.groupby("customer_id", sort=True)["date"].min()
    contacts = pd.DataFrame({"contact_id": first.index.to_numpy(), "created_at": first.to_numpy()})
    contacts["updated_at"] = contacts["created_at"]
    return contacts, orders


def convert(input_path: Path, out: Path) -> dict:
    """Write ``contacts.csv`` and ``orders.csv`` into ``out``; return row counts."""
    purchases = read_cdnow(input_path)
    contacts, orders = to_contract(purchases)
    out.mkdir(parents=True, exist_ok=True)
    fmt = "%Y-%m-%d %H:%M:%S"
    contacts.to_csv(out / "contacts.csv", index=False, date_format=fmt)
    orders.to_csv(out / "orders.csv", index=False, date_format=fmt)
    summary = {
        "contacts": len(contacts),
        "orders": len(orders),
        "first_order": orders["ordered_at"].min().date().isoformat(),
        "last_order": orders["ordered_at"].max().date().isoformat(),
        "out": str(out),
    }
    log.info("wrote %(contacts)d contacts and %(orders)d orders to %(out)s", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python examples/cdnow/convert.py",
        description="Convert CDNOW_master.txt into a customer720 CRM export folder "
        "(contacts.csv, orders.csv) for `python -m ingest crm --source <folder>` "
        "or C720_CRM_URL=<folder>.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See examples/cdnow/README.md for the whole run (ingest, dbt, ml train).",
    )
    parser.add_argument(
        "--input",
        type=Path,
        default=DEFAULT_INPUT,
        help=f"the CDNOW purchase log (default: $CDNOW_FILE or {DEFAULT_INPUT})",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder to write contacts.csv and orders.csv to"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = convert(args.input, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{summary['contacts']} contacts, {summary['orders']} orders "
        f"({summary['first_order']} .. {summary['last_order']}) -> {summary['out']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
