"""Issue #19, item 3: blank and whitespace ids never reach staging or the identity graph.

The ingest corpus (tests/ingest/test_bad_input_corpus.py) proves they never reach ``raw``;
this follows them end to end. Events whose ``event_id``, ``anonymous_id`` or ``user_id``
is empty or only whitespace (ASCII, and Unicode spaces such as a no-break space) are
added to one day's event file of a small company, next to control events with good ids
on the same cookie; then ingest and the dbt build run (in a child), and no blank id may be
in ``staging.stg_web__events``, any ``intermediate.int_identity_*`` table (nor a node id
such as ``anon:`` + blanks) or the session tables — while the control events are there.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest
from faultkit import LAST, run_date, simulate

BLANKS = ["", " ", "   ", "\t", "\n", " \t\r\n ", "\u00a0", "\u3000", "\u2003", "\x0b"]
# A value counts as blank when nothing but these is in it: RE2's \s, Unicode spaces (\p{Z}),
# vertical tab, next line (what Python's str.isspace() calls whitespace).
BLANK_SQL = r"regexp_full_match({col}, '[\s\p{{Z}}\x{{0b}}\x{{85}}\x{{1c}}-\x{{1f}}]*')"
ID_COLUMNS = {
    "event_id", "anonymous_id", "user_id", "session_id", "customer_key", "node_id",
    "contact_node_id", "other_node_id", "evidence_id", "email_hash", "component_label",
}  # fmt: skip
NODE_COLUMNS = {"node_id", "contact_node_id", "other_node_id"}  # "<type>:<id>"


def _events(day: str, contact_id: int) -> list[dict]:
    base = {
        "event_type": "page_view",
        "collector_timestamp": f"{day}T12:00:00Z",
        "platform": "web",
        "page_url": "https://shop.example.com/",
    }
    rows = []
    for i, blank in enumerate(BLANKS):
        cookie = f"blank-test-cookie-{i}"
        rows += [
            {**base, "event_id": blank, "anonymous_id": cookie},
            {**base, "event_id": f"blank-test-anon-{i}", "anonymous_id": blank},
            {**base, "event_id": f"blank-test-anon-login-{i}", "anonymous_id": blank,
             "event_type": "login", "user_id": str(contact_id)},
            {**base, "event_id": f"blank-test-user-{i}", "anonymous_id": cookie,
             "event_type": "login", "user_id": blank},
            # the control: the same cookie with good ids must make it through
            {**base, "event_id": f"blank-test-good-{i}", "anonymous_id": cookie},
        ]  # fmt: skip
    return rows


def _blank(col: str) -> str:
    return BLANK_SQL.format(col=f'"{col}"')


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("blank_ids")
    local = root / "local"
    sources = simulate(local, root / "simulate.log")
    # The day with the most events, so the added lines stay under the rejection threshold.
    path = max((sources / "events").glob("date=*/*.json.gz"), key=lambda p: p.stat().st_size)
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    day = path.parent.name.removeprefix("date=")
    extra = [json.dumps(e) for e in _events(day, contact_id=1)]
    assert len(extra) < 0.2 * len(lines), "the file would be rejected: use a busier day"
    path.write_bytes(gzip.compress(("\n".join(lines + extra) + "\n").encode()))
    run_date(local, LAST, root / "build.log", "--until", "marts")
    return local / "warehouse.duckdb"


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute(
        """select table_schema || '.' || table_name, column_name
           from information_schema.columns
           where data_type = 'VARCHAR' and (
               (table_schema = 'raw' and table_name = 'web_events')
               or (table_schema = 'staging' and table_name = 'stg_web__events')
               or (table_schema = 'intermediate' and table_name like 'int\\_identity\\_%' escape '\\')
               or table_name like '%sessions%')"""
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        if column in ID_COLUMNS:
            out.setdefault(table, []).append(column)
    return out


def test_no_blank_id_reaches_staging_identity_graph_or_sessions(built: Path) -> None:
    with duckdb.connect(str(built), read_only=True) as con:
        tables = _tables(con)
        assert {"staging.stg_web__events", "intermediate.int_identity_nodes_resolved",
                "intermediate.int_identity_edges_collected", "intermediate.int_identity_merges",
                "intermediate.int_sessions_aggregated", "marts.fct_sessions",
                "raw.web_events"} <= set(tables), sorted(tables)  # fmt: skip
        found = {}
        for table, columns in tables.items():
            for col in columns:
                conds = [_blank(col)]
                if col in NODE_COLUMNS:  # the id part of "anon:<id>"
                    conds.append(
                        BLANK_SQL.format(col=f"""substr("{col}", strpos("{col}", ':') + 1)""")
                    )
                n, sample = con.execute(
                    f"""select count(*), list(distinct "{col}")[:3] from {table}
                        where "{col}" is not null and ({" or ".join(conds)})"""
                ).fetchone()
                if n:
                    found[f"{table}.{col}"] = (n, sample)
        good = con.execute(
            """select count(distinct event_id) from staging.stg_web__events
               where event_id like 'blank-test-good-%'"""
        ).fetchone()[0]
        cookies = con.execute(
            """select count(distinct anonymous_id) from intermediate.int_identity_nodes_resolved
               where anonymous_id like 'blank-test-cookie-%'"""
        ).fetchone()[0]
    assert found == {}, f"blank ids got through: {found}"
    assert good == len(BLANKS), "the control events with good ids must reach staging"
    assert cookies == len(BLANKS), "the control cookies must be nodes of the identity graph"
