"""The source contract (``contract.json``) as typed Python objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CONTRACT_PATH = Path(__file__).with_name("contract.json")

METADATA_COLUMNS = {
    "_batch_id": "VARCHAR",
    "_loaded_at": "TIMESTAMP",
    "_source": "VARCHAR",
    # Fields a source sent that the contract does not name (schema drift), kept as JSON.
    "_extra": "VARCHAR",
}


@dataclass(frozen=True)
class Column:
    """A contract column and its value rules (see ``rules`` in contract.json)."""

    name: str
    type: str
    required: bool = False
    values: tuple[str, ...] = ()
    min: float | None = None
    format: str | None = None
    references: str | None = None  # "<crm table>.<column>"
    on_invalid: str = "quarantine"  # or "warn" (load as sent), "false" (BOOLEAN: load false)
    max_days_after_load: float | None = None
    range_by: dict | None = None  # {"column": ..., "ranges": {value: [lo, hi]}}
    min_unless: dict | None = None  # {"column": ..., "values": [...]}: min waived for those


@dataclass(frozen=True)
class TableSpec:
    name: str
    raw_table: str
    primary_key: str
    columns: tuple[Column, ...]
    required_table: bool

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def raw_ddl(self, schema: str = "raw") -> str:
        cols = [f'"{c.name}" {c.type}' for c in self.columns]
        cols += [f'"{name}" {type_}' for name, type_ in METADATA_COLUMNS.items()]
        return f'create table if not exists {schema}."{self.raw_table}" ({", ".join(cols)})'


def _spec(name: str, raw_table: str, body: dict) -> TableSpec:
    columns = tuple(
        Column(
            col,
            meta["type"],
            bool(meta.get("required", False)),
            values=tuple(meta.get("values", ())),
            min=meta.get("min"),
            format=meta.get("format"),
            references=meta.get("references"),
            on_invalid=meta.get("on_invalid", "quarantine"),
            max_days_after_load=meta.get("max_days_after_load"),
            range_by=meta.get("range_by"),
            min_unless=meta.get("min_unless"),
        )
        for col, meta in body["columns"].items()
    )
    return TableSpec(
        name=name,
        raw_table=raw_table,
        primary_key=body["primary_key"],
        columns=columns,
        required_table=bool(body.get("required_table", False)),
    )


@cache
def contract() -> dict:
    return json.loads(CONTRACT_PATH.read_text())


@cache
def crm_tables() -> tuple[TableSpec, ...]:
    tables = contract()["crm"]["tables"]
    return tuple(_spec(name, f"crm_{name}", body) for name, body in tables.items())


@cache
def events_table() -> TableSpec:
    return _spec("events", "web_events", contract()["events"])


def accepted_values(section: str, column: str) -> list[str]:
    """The values the contract allows for ``column`` of ``section`` ("events" or a CRM table)."""
    body = contract()["events"] if section == "events" else contract()["crm"]["tables"][section]
    return list(body["columns"][column].get("values", []))


def rules() -> dict:
    """The contract's value rules: boolean spellings, time range, named formats."""
    return contract()["rules"]


def contract_boolean(value: object) -> bool | None:
    """A value read straight from a source as the contract's BOOLEAN: True for an explicit
    yes, False for an explicit no, None for anything else (missing or garbage like 'maybe').

    The same spellings as the raw layer's SQL (``rules()``), for code that reads the CRM
    itself (the writeback reads consent there, as it is now)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return {1: True, 0: False}.get(value)
    word = str(value).strip().lower()
    if word in rules()["boolean_true"]:
        return True
    if word in rules()["boolean_false"]:
        return False
    return None


def all_raw_tables() -> tuple[TableSpec, ...]:
    return (*crm_tables(), events_table())
