"""Preflight: are the sources there, and which days do they hold? Checked before any task.

``check_sources`` runs in the launcher before Airflow starts (so a misspelt CRM path fails
in a second, not after the metadata DB and a DAG parse) and as the first thing of the
ingest stage (a scheduled run checks the same). It raises ``PreflightError`` naming what
is wrong; it never creates anything: SQLAlchemy would create a missing SQLite file on
connect, so the file's existence is checked first.

The days the sources hold: CRM orders (``ordered_at`` and ``updated_at``) and the
``date=YYYY-MM-DD`` folders of the web/app events. The newest is the default run date;
a run date outside them is an error that names the range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from customer720.settings import Settings

REQUIRED_CRM_TABLES = ("contacts", "orders")
EXPORT_SUFFIXES = (".csv", ".csv.gz", ".parquet")


class PreflightError(RuntimeError):
    """A source is missing or unusable, or the run date is outside the data."""


@dataclass
class Sources:
    first: date | None = None  # the oldest day any source holds
    newest: date | None = None  # the newest day any source holds
    warnings: list[str] = field(default_factory=list)

    def add(self, days: tuple[date | None, date | None]) -> None:
        for day in days:
            if day is not None:
                self.first = day if self.first is None else min(self.first, day)
                self.newest = day if self.newest is None else max(self.newest, day)

    def as_dict(self) -> dict:
        return {
            "first_day": self.first.isoformat() if self.first else None,
            "newest_day": self.newest.isoformat() if self.newest else None,
            "warnings": self.warnings,
        }


def _day(value: object) -> date | None:
    return None if value is None else date.fromisoformat(str(value)[:10])


def _crm_folder_days(folder: Path) -> tuple[date | None, date | None]:
    if not folder.is_dir():
        raise PreflightError(f"the CRM export folder {folder} does not exist (C720_CRM_URL)")
    files = {}
    for table in REQUIRED_CRM_TABLES:
        found = [
            folder / f"{table}{s}" for s in EXPORT_SUFFIXES if (folder / f"{table}{s}").exists()
        ]
        if not found:
            raise PreflightError(
                f"the CRM export folder {folder} has no {table} table "
                f"({' / '.join(table + s for s in EXPORT_SUFFIXES)})"
            )
        files[table] = found[0]
    import duckdb

    orders = files["orders"].as_posix().replace("'", "''")
    reader = "read_parquet" if orders.endswith(".parquet") else "read_csv_auto"
    with duckdb.connect() as con:  # duckdb 2.0: a relation has no fetchone(); a cursor does
        row = con.execute(
            "select min(ordered_at), greatest(max(ordered_at), max(updated_at)) "
            f"from {reader}('{orders}')"
        ).fetchone()
    return _day(row[0]), _day(row[1])


def _crm_database_days(url: str) -> tuple[date | None, date | None]:
    import sqlalchemy as sa

    from customer720.warehouse import display_url, sqlalchemy_url

    parsed = sa.make_url(sqlalchemy_url(url))
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise PreflightError(f"the CRM URL {url} names no SQLite file (C720_CRM_URL)")
        if not Path(database).is_file():
            raise PreflightError(f"the CRM database {Path(database)} does not exist (C720_CRM_URL)")
    engine = sa.create_engine(parsed)
    try:
        with engine.connect() as con:
            tables = set(sa.inspect(con).get_table_names())
            missing = [t for t in REQUIRED_CRM_TABLES if t not in tables]
            if missing:
                raise PreflightError(
                    f"the CRM {display_url(url)} has no {' / '.join(missing)} table"
                    f"{'s' if len(missing) > 1 else ''} (found: {', '.join(sorted(tables)) or 'none'})"
                )
            row = con.execute(
                sa.text("select min(ordered_at), max(ordered_at), max(updated_at) from orders")
            ).one()
    except sa.exc.OperationalError as exc:
        raise PreflightError(f"cannot reach the CRM {display_url(url)}: {exc.orig}") from exc
    finally:
        engine.dispose()
    newest = [d for d in (_day(row[1]), _day(row[2])) if d is not None]
    return _day(row[0]), max(newest) if newest else None


def _event_days(settings: Settings, sources: Sources) -> tuple[date | None, date | None]:
    folder = settings.events_dir
    if settings.no_events:
        sources.warnings.append(
            "C720_NO_EVENTS is set: no web/app events are loaded; "
            "engagement features and the events gate are empty"
        )
        return None, None
    if not folder.is_dir():
        raise PreflightError(
            f"the events folder {folder} does not exist (C720_EVENTS_DIR); if this company "
            "has no web/app events, set C720_NO_EVENTS=1"
        )
    days = []
    for sub in folder.rglob("date=*"):
        try:
            days.append(date.fromisoformat(sub.name.removeprefix("date=")[:10]))
        except ValueError:
            continue
    return (min(days), max(days)) if days else (None, None)


def check_sources(settings: Settings) -> Sources:
    """The CRM reachable with its required tables, the events folder there (or declared
    absent); the days they hold. Raises ``PreflightError``."""
    sources = Sources()
    url = settings.crm_url
    sources.add(_crm_folder_days(Path(url)) if "://" not in url else _crm_database_days(url))
    sources.add(_event_days(settings, sources))
    return sources


def check_date(day: date, sources: Sources) -> None:
    """``day`` must lie within the days the sources hold."""
    if sources.first is None or sources.newest is None:
        raise PreflightError("the sources hold no dated data (no orders, no event day folders)")
    if not sources.first <= day <= sources.newest:
        raise PreflightError(
            f"{day} is outside the data: the sources hold {sources.first} .. {sources.newest}"
        )
