"""CRM writeback: only changes are written, consent and deletion are honoured, audit adds up."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from activate.__main__ import main
from activate.writeback import (
    AUDIT_TABLE,
    SCORES_TABLE,
    forget_contacts,
    scores_table,
    sync_scores,
)
from customer720 import warehouse
from customer720.warehouse import sqlalchemy_url

AS_OF = date(2024, 6, 30)


def _crm(url: str, contacts: list[tuple]) -> None:
    engine = sa.create_engine(sqlalchemy_url(url))
    with engine.begin() as con:
        con.execute(
            sa.text(
                "create table contacts (contact_id bigint primary key, "
                "marketing_consent boolean, is_deleted boolean)"
            )
        )
        for row in contacts:
            con.execute(
                sa.text("insert into contacts values (:i, :c, :d)"),
                {"i": row[0], "c": row[1], "d": row[2]},
            )
    engine.dispose()


def _scores(probabilities: dict[int, float], scored_at: str = "2024-06-30 03:00") -> None:
    keys = [f"k{i}" for i in probabilities]
    warehouse.replace_rows(
        pd.DataFrame({"customer_key": keys, "primary_contact_id": list(probabilities)}),
        "marts",
        "dim_customer_720",
    )
    scores = pd.DataFrame(
        {
            "customer_key": keys,
            "as_of_date": [AS_OF] * len(keys),
            "churn_probability": list(probabilities.values()),
            "risk_band": ["high" if p > 0.5 else "low" for p in probabilities.values()],
            "top_reasons": ["no order for 120 days"] * len(keys),
            "model_version": ["v1"] * len(keys),
            "scored_at": [pd.Timestamp(scored_at)] * len(keys),
        }
    )
    warehouse.replace_rows(scores, "marts", "customer_churn_scores")
    warehouse.replace_rows(scores, "marts", "customer_churn_score_history")
    # CLV 100 a person: revenue at risk = P(churn) x 100, the riskiest first
    at_risk = [100.0 * p for p in probabilities.values()]
    order = sorted(range(len(keys)), key=lambda i: -at_risk[i])
    warehouse.replace_rows(
        pd.DataFrame(
            {
                "customer_key": keys,
                "as_of_date": [AS_OF] * len(keys),
                "clv": [100.0] * len(keys),
                "churn_probability": list(probabilities.values()),
                "revenue_at_risk": at_risk,
                "save_rank": [order.index(i) + 1 for i in range(len(keys))],
            }
        ),
        "marts",
        "customer_value_scores",
    )
    warehouse.replace_rows(
        pd.DataFrame(
            {
                "customer_key": keys * 2,
                "as_of_date": [AS_OF] * (2 * len(keys)),
                "rank": [1] * len(keys) + [2] * len(keys),
                "product_id": [11] * len(keys) + [12] * len(keys),
            }
        ),
        "marts",
        "customer_recommendations",
    )


def _crm_rows(url: str, table: str) -> pd.DataFrame:
    engine = sa.create_engine(sqlalchemy_url(url))
    with engine.connect() as con:
        df = pd.read_sql_query(sa.text(f"select * from {table}"), con)
    engine.dispose()
    return df


@pytest.fixture(params=["sqlite", "postgres"])
def crm_url(
    request: pytest.FixtureRequest, local_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "sqlite":
        local_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{local_dir / 'crm.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("C720_CRM_URL", url)
    # contact 1, 2: consent; 3: opted out; 4: deleted
    _crm(url, [(1, True, False), (2, True, False), (3, False, False), (4, True, True)])
    return url


def test_sync_writes_only_changes_and_honours_consent(crm_url: str) -> None:
    _scores({1: 0.8, 2: 0.1, 3: 0.5, 4: 0.9})
    first = sync_scores(AS_OF)
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    assert (first.skipped_no_consent, first.skipped_deleted, first.failed) == (1, 1, 0)
    written = _crm_rows(crm_url, SCORES_TABLE).set_index("contact_id")
    assert sorted(written.index) == ["1", "2"]
    assert written.loc["1", "next_best_products"] == "11,12"
    assert written.loc["1", "churn_risk_band"] == "high"
    # what the account team sees: CLV, revenue at risk = P(churn) x CLV, who to save first
    assert written.loc["1", "clv"] == 100.0
    assert written.loc["1", "revenue_at_risk"] == pytest.approx(80.0)
    assert (written.loc["1", "save_rank"], written.loc["2", "save_rank"]) == (2, 4)

    again = sync_scores(AS_OF)
    assert (again.written, again.unchanged) == (0, 2)

    # Re-scoring the same date with the same values (only scored_at moves) writes nothing.
    _scores({1: 0.8, 2: 0.1, 3: 0.5, 4: 0.9}, scored_at="2024-06-30 05:00")
    assert sync_scores(AS_OF).written == 0

    _scores({1: 0.8, 2: 0.35, 3: 0.5, 4: 0.9})
    changed = sync_scores(AS_OF)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 1)

    audit = _crm_rows(crm_url, AUDIT_TABLE)
    assert len(audit) == 4
    # Every desired row is accounted for in every run.
    totals = audit[
        [
            "inserted",
            "updated",
            "unchanged",
            "skipped_no_consent",
            "skipped_deleted",
            "skipped_unknown_contact",
            "failed",
        ]
    ].sum(axis=1)
    assert list(totals) == [4, 4, 4, 4]


def test_opt_out_after_sync_clears_the_values(crm_url: str) -> None:
    _scores({1: 0.8, 2: 0.1})
    sync_scores(AS_OF)
    engine = sa.create_engine(sqlalchemy_url(crm_url))
    with engine.begin() as con:
        con.execute(sa.text("update contacts set marketing_consent = false where contact_id = 2"))
    engine.dispose()
    result = sync_scores(AS_OF)
    assert result.cleared == 1
    assert sorted(_crm_rows(crm_url, SCORES_TABLE)["contact_id"]) == ["1"]


def test_a_backfilled_older_date_leaves_the_crm_alone(crm_url: str) -> None:
    _scores({1: 0.8, 2: 0.1})
    sync_scores(AS_OF)
    older = sync_scores(date(2024, 6, 1))
    assert older.skipped_reason and older.written == 0
    assert len(_crm_rows(crm_url, SCORES_TABLE)) == 2


def test_dry_run_writes_nothing(crm_url: str) -> None:
    _scores({1: 0.8, 2: 0.1})
    result = sync_scores(AS_OF, dry_run=True)
    assert result.inserted == 2
    engine = sa.create_engine(sqlalchemy_url(crm_url))
    assert not sa.inspect(engine).has_table(SCORES_TABLE)
    engine.dispose()


def _reject_contact_2(url: str) -> None:
    """A CRM-side validation rule that refuses writes for contact 2 (as a locked record)."""
    engine = sa.create_engine(sqlalchemy_url(url))
    scores_table.create(engine)
    with engine.begin() as con:
        if engine.dialect.name == "sqlite":
            con.exec_driver_sql(
                f"""create trigger reject_2 before insert on {SCORES_TABLE}
                    when new.contact_id = '2'
                    begin select raise(abort, 'contact 2 is locked'); end"""
            )
        else:
            con.exec_driver_sql(
                """create function reject_2() returns trigger language plpgsql as $$
                   begin
                     if new.contact_id = '2' then raise exception 'contact 2 is locked'; end if;
                     return new;
                   end $$"""
            )
            con.exec_driver_sql(
                f"""create trigger reject_2 before insert on {SCORES_TABLE}
                    for each row execute function reject_2()"""
            )
    engine.dispose()


def _drop_rule(url: str) -> None:
    engine = sa.create_engine(sqlalchemy_url(url))
    with engine.begin() as con:
        con.exec_driver_sql(
            "drop trigger reject_2"
            if engine.dialect.name == "sqlite"
            else f"drop trigger reject_2 on {SCORES_TABLE}"
        )
    engine.dispose()


def test_a_failed_row_fails_alone_and_is_retried_next_run(crm_url: str) -> None:
    _scores({1: 0.8, 2: 0.1, 3: 0.5, 4: 0.9, 5: 0.3})  # 5 is not in the CRM
    _reject_contact_2(crm_url)
    first = sync_scores(AS_OF)
    assert (first.inserted, first.failed) == (1, 1)
    assert first.failures[0].startswith("contact 2:") and "locked" in first.failures[0]
    assert sorted(_crm_rows(crm_url, SCORES_TABLE)["contact_id"]) == ["1"]
    audit = _crm_rows(crm_url, AUDIT_TABLE).iloc[-1]
    assert "contact 2" in audit["failures"]
    # The audit accounts for every scored contact: written, unchanged, skipped or failed.
    assert (
        audit["inserted"]
        + audit["updated"]
        + audit["unchanged"]
        + audit["skipped_no_consent"]
        + audit["skipped_deleted"]
        + audit["skipped_unknown_contact"]
        + audit["failed"]
    ) == 5

    _drop_rule(crm_url)  # the CRM accepts it again: the next run retries the failed row only
    second = sync_scores(AS_OF)
    assert (second.inserted, second.updated, second.unchanged, second.failed) == (1, 0, 1, 0)
    assert sorted(_crm_rows(crm_url, SCORES_TABLE)["contact_id"]) == ["1", "2"]

    # Erasing contact 2 removes its scores and the failure note that named it.
    assert forget_contacts([2]) == {
        f"crm:{SCORES_TABLE}": 1,
        f"crm:{AUDIT_TABLE}.failures": 1,
    }
    assert sorted(_crm_rows(crm_url, SCORES_TABLE)["contact_id"]) == ["1"]
    assert "contact 2" not in " ".join(_crm_rows(crm_url, AUDIT_TABLE)["failures"])


def test_dry_run_prints_what_would_change(
    crm_url: str, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _scores({1: 0.8, 2: 0.1, 3: 0.5})
    assert main(["sync", "--as-of", AS_OF.isoformat(), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would write 2 new and 0 changed contacts" in out
    assert "1 without consent" in out
    assert "insert" in out and "0.8" in out and "11,12" in out
    sync_scores(AS_OF)
    _scores({1: 0.8, 2: 0.35, 3: 0.5})
    assert main(["sync", "--as-of", AS_OF.isoformat(), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would write 0 new and 1 changed contacts" in out
    assert "update" in out and "0.35" in out
    # Nothing was written by either dry run.
    assert (
        _crm_rows(crm_url, SCORES_TABLE).set_index("contact_id").loc["2", "churn_probability"]
        == 0.1
    )


def test_consent_is_never_inferred(local_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only an explicit yes allows a write: 'maybe', 'no', '' or a typo never reach the CRM
    record, and a deletion flag that says neither yes nor no writes nothing either."""
    local_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{local_dir / 'crm.sqlite'}"
    monkeypatch.setenv("C720_CRM_URL", url)
    engine = sa.create_engine(sqlalchemy_url(url))
    with engine.begin() as con:
        # Text columns, as a CRM export or a loosely typed SQLite table holds them.
        con.execute(
            sa.text(
                "create table contacts (contact_id bigint primary key, marketing_consent text, is_deleted text)"
            )
        )
        rows = [
            (1, "yes", "no"),
            (2, "TRUE", "0"),
            (3, "maybe", "no"),
            (4, "yess", "no"),
            (5, "", "no"),
            (6, None, "false"),
            (7, "0", "no"),
            (8, "t", "perhaps"),
        ]
        for i, c, d in rows:
            con.execute(
                sa.text("insert into contacts values (:i, :c, :d)"), {"i": i, "c": c, "d": d}
            )
    engine.dispose()
    _scores({i: 0.5 for i, _, _ in rows})
    result = sync_scores(AS_OF)
    written = set(_crm_rows(url, SCORES_TABLE)["contact_id"])
    assert written == {"1", "2"}
    assert (result.skipped_no_consent, result.skipped_deleted) == (5, 1)


def test_a_scores_table_keyed_by_integers_is_widened_to_text_ids(crm_url: str) -> None:
    """A CRM holding the scores table of a release that keyed contacts by integer: the
    next sync keeps its rows (ids as their text) and can write text ids beside them."""
    engine = sa.create_engine(sqlalchemy_url(crm_url))
    with engine.begin() as con:
        con.exec_driver_sql(
            f"create table {SCORES_TABLE} (contact_id bigint primary key, "
            "churn_probability float, churn_risk_band varchar(16), churn_top_reasons text, "
            "next_best_products text, model_version varchar(64), scored_at varchar(32), "
            "values_hash varchar(64), synced_at varchar(32))"
        )
        con.exec_driver_sql(
            f"insert into {SCORES_TABLE} (contact_id, churn_probability, values_hash) "
            "values (1, 0.3, 'old'), (3, 0.2, 'old')"
        )
        con.exec_driver_sql(
            "insert into contacts values ('0035g00000AbCdEAAZ', true, false)"
            if engine.dialect.name == "sqlite"
            else "alter table contacts alter column contact_id type text"
        )
        if engine.dialect.name != "sqlite":
            con.exec_driver_sql("insert into contacts values ('0035g00000AbCdEAAZ', true, false)")
    engine.dispose()
    _scores({1: 0.8, "0035g00000AbCdEAAZ": 0.6})
    result = sync_scores(AS_OF)
    assert (result.updated, result.inserted, result.cleared, result.failed) == (1, 1, 1, 0)
    written = _crm_rows(crm_url, SCORES_TABLE).set_index("contact_id")
    # 3 opted out: its old row is cleared; 1 is updated in place; the text id is new
    assert sorted(written.index) == ["0035g00000AbCdEAAZ", "1"]
    assert written.loc["1", "churn_probability"] == 0.8
