"""The raw layer as a date's run read it: earlier versions of CRM rows, and the loads read.

A CRM source keeps only its current state, and the CRM extract merges it into
``raw.crm_<table>`` on the key, so without more a re-run of a past date D would read
today's CRM (issue #19). Two things keep the past:

- **Versions** — when a load replaces a row, the replaced version goes to
  ``raw.crm_<table>_history`` (:func:`keep_replaced_versions`), stamped with the load time
  that replaced it (``_valid_to``); it was valid from its own ``_loaded_at``. Only changed
  rows are added, so the daily extract stays as cheap as the merge itself.
- **Pins** — ``raw.as_of_loads`` records, per date, the loads a run for that date read
  (``loaded_through``: :func:`pin_loads`, called by the transform stage before its
  build). A run for the newest date reads everything loaded (its pin moves forward with
  it); a re-run of an older date D keeps D's pin, and the staging models
  (``dbt_project/macros/as_of_loads.sql``) then select the CRM as loaded through it (the
  rows loaded by then that no load before it had replaced) and the web events loaded by
  then (they are appended, never changed). So a replay of D reads what its first run read,
  whatever was loaded since.

A past date never run before (a true backfill) is pinned to what the earliest later date
read: the nearest state to D the warehouse has. The erasure (``privacy/``) removes a
person from the history tables like from every table, and the suppression of erased
people (:mod:`ingest.suppression`) covers them too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from customer720.settings import Settings, get_settings
from customer720.warehouse import Destination
from ingest import raw_store
from ingest.contract import TableSpec

log = logging.getLogger(__name__)

PINS_TABLE = f"{raw_store.SCHEMA}.as_of_loads"  # raw_store.BOOKKEEPING_TABLES["as_of_loads"]


def keep_replaced_versions(
    dest: Destination, spec: TableSpec, changed: str, batch_id: str, replaced_at: datetime
) -> int:
    """Copy the stored versions of the keys in ``changed`` (a relation in ``dest`` with the
    primary key) to the history table, valid until ``replaced_at``; returns how many.

    Called by the CRM extract just before it replaces those versions, in its transaction."""
    pk = spec.primary_key
    columns = ", ".join(f'"{c}"' for c in raw_store.raw_columns(spec))
    raw = f"{raw_store.SCHEMA}.{spec.raw_table}"
    where = f'where "{pk}" in (select "{pk}" from {changed})'
    n = int(dest.fetchall(f"select count(*) from {raw} {where}")[0][0])
    if n:
        dest.execute(
            f"""insert into {raw_store.SCHEMA}.{raw_store.history_table(spec)}
                ({columns}, _valid_to, _replaced_by)
                select {columns}, ?, ? from {raw} {where}""",
            [replaced_at, batch_id],
        )
    return n


@dataclass(frozen=True)
class LoadsPin:
    """What a run for ``as_of`` reads of the raw layer: the loads through ``loaded_through``."""

    as_of: date
    loaded_through: datetime
    replay: bool  # a later date was run before: the state is a past one, not the newest

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "loaded_through": self.loaded_through.isoformat(sep=" "),
            "replay": self.replay,
        }


def pin(dest: Destination, as_of: date) -> LoadsPin:
    """Record (or keep) which loads a run for ``as_of`` reads; see the module doc."""
    later = dest.fetchall(
        f"select min(loaded_through) from {PINS_TABLE} where as_of_date > ?", [as_of]
    )[0][0]
    pinned = dest.fetchall(f"select loaded_through from {PINS_TABLE} where as_of_date = ?", [as_of])
    now = raw_store.utc_now()
    if later is None:
        # The newest date run so far reads everything loaded (a re-run of it too).
        dest.execute(f"delete from {PINS_TABLE} where as_of_date = ?", [as_of])
        dest.insert_rows(
            PINS_TABLE, ["as_of_date", "loaded_through", "recorded_at"], [(as_of, now, now)]
        )
        return LoadsPin(as_of, now, replay=False)
    if pinned:
        return LoadsPin(as_of, pinned[0][0], replay=True)
    # Never run before, older than a date that was: the nearest state to it that is known.
    dest.insert_rows(
        PINS_TABLE, ["as_of_date", "loaded_through", "recorded_at"], [(as_of, later, now)]
    )
    log.warning(
        "loads for %s: this date was never run before and a later one was; it reads the "
        "CRM and the events as loaded through %s (what the earliest later date read)",
        as_of,
        later,
    )
    return LoadsPin(as_of, later, replay=True)


def pin_loads(as_of: date, settings: Settings | None = None) -> LoadsPin:
    """Pin the loads a run for ``as_of`` reads, in the warehouse (the transform stage calls
    this before its build); ``replay`` tells the build that incremental models hold rows
    of later loads and must be rebuilt."""
    settings = settings or get_settings()
    with raw_store.open_raw(settings) as dest:
        # Only the pins table: the raw layer is ingest's to create (a table missing there
        # must fail the build that reads it, not be created empty here).
        raw_store.ensure_bookkeeping_table(dest, "as_of_loads")
        dest.begin()
        state = pin(dest, as_of)
        dest.commit()
    if state.replay:
        log.info(
            "a re-run of %s: it reads the CRM and events as loaded through %s",
            as_of,
            state.loaded_through,
        )
    return state
