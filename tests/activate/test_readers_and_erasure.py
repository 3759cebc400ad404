"""A demo company through the real stages while a BI reader reads; then one person erased.

One small simulated company (120 customers x 150 days, seed 5) is built once for the
module by the pipeline's own stage functions in a child process (ingest, dbt, churn
model, recommendations, score marts, publish, CRM sync: what the Airflow DAG runs, minus
Airflow's start-up and the read-only quality gates, to keep the suite fast). All the
while a separate reader process queries the published snapshot in a loop.

Then one person - two CRM records sharing an email, orders, cookies stitched to them by
logins, a quarantined event naming them - is erased with ``python -m privacy erase``,
and the source keeps holding them (and sends more of them) for the next ingest + build.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from activate.publish import publish
from customer720 import warehouse
from customer720.settings import get_settings
from customer720.warehouse import open_destination
from privacy.erasure import Identity, find_traces, resolve_identity

CUSTOMERS, DAYS, SEED = 120, 150, 5
START = date(2024, 1, 1)
END = START + timedelta(days=DAYS - 1)
HERE = Path(__file__).parent


def _run(cmd: list[str], log: Path) -> str:
    with log.open("w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    text = log.read_text(errors="replace")
    if code != 0:
        tail = "\n".join(text.splitlines()[-60:])
        pytest.fail(f"{' '.join(cmd[1:4])} failed ({code}):\n{tail}")
    return text


def _choose_person(sources: Path) -> dict:
    """A person with two CRM records, consent, orders and logged-in cookies (from the source)."""
    crm = sqlite3.connect(sources / "crm.sqlite")
    contacts = pd.read_sql(
        "select contact_id, email, marketing_consent, is_deleted from contacts", crm
    )
    orders = pd.read_sql("select contact_id, count(*) as orders from orders group by 1", crm)
    crm.close()
    truth = pd.read_parquet(sources / "truth" / "contact_persons.parquet")
    truth["contact_id"] = truth["contact_id"].astype(str)  # the CRM keys by text ids
    with duckdb.connect() as con:
        logins = con.execute(
            f"""select distinct user_id as contact_id, anonymous_id
                from read_json('{sources}/events/*/*.json.gz',
                               columns = {{anonymous_id: 'varchar', user_id: 'varchar'}})
                where user_id is not null"""
        ).df()
    df = truth.merge(contacts, on="contact_id").merge(orders, on="contact_id", how="left")
    for person_id, rows in df.groupby("person_id"):
        cookies = set(logins.loc[logins["contact_id"].isin(rows["contact_id"]), "anonymous_id"])
        if (
            len(rows) >= 2
            and rows["marketing_consent"].astype(bool).all()
            and not rows["is_deleted"].astype(bool).any()
            and rows["orders"].fillna(0).sum() > 0
            and cookies
        ):
            return {
                "person_id": int(person_id),
                "contact_ids": sorted(str(c) for c in rows["contact_id"]),
                "emails": sorted(set(rows["email"])),
                "anonymous_ids": sorted(cookies),
            }
    raise AssertionError("the simulated company has no person with two consenting CRM records")


def _quarantine_bait(events: Path, person: dict) -> None:
    """A cut-short event line naming the person, so raw.quarantine holds them too."""
    path = sorted(events.glob("date=*/*.json.gz"))[10]
    lines = gzip.decompress(path.read_bytes()).decode()
    bad = (
        f'{{"event_id": "bait", "anonymous_id": "{person["anonymous_ids"][0]}", '
        f'"user_id": "{person["contact_ids"][0]}", "event_type": "page_'
    )
    path.write_bytes(gzip.compress((lines + bad + "\n").encode()))


def _stand_in_snapshot(root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Version 0 of the published snapshot, from another warehouse: the reader sees a swap."""
    monkeypatch.setenv("C720_WAREHOUSE", str(root / "v0.duckdb"))
    keys = pd.DataFrame({"customer_key": ["a", "b", "c"]})
    warehouse.replace_rows(keys, "marts", "dim_customer_720")
    warehouse.replace_rows(keys.assign(churn_probability=0.5), "marts", "customer_churn_scores")
    v0 = publish()["publish_id"]
    monkeypatch.delenv("C720_WAREHOUSE")
    return v0


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("activate_company")
    local = root / "local"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("C720_LOCAL_DIR", str(local))
        mp.setenv("C720_QUARANTINE_MAX_RATE", "0.2")
        mp.setenv("C720_ML_NUM_THREADS", "2")
        sources = local / "sources"
        _run(
            [sys.executable, "-m", "simulator", "--customers", str(CUSTOMERS), "--days",
             str(DAYS), "--seed", str(SEED), "--start", START.isoformat(), "--out",
             str(sources), "-q"],
            root / "simulate.log",
        )  # fmt: skip
        person = _choose_person(sources)
        _quarantine_bait(sources / "events", person)
        v0 = _stand_in_snapshot(root, mp)
        stop, seen = root / "stop-reader", root / "reader.json"
        reader = subprocess.Popen(
            [sys.executable, str(HERE / "snapshot_reader.py"), str(local / "published.duckdb"),
             str(stop), str(seen)]
        )  # fmt: skip
        try:
            out = _run(
                [sys.executable, str(HERE / "pipeline_stages.py"), "--date", END.isoformat()],
                root / "pipeline.log",
            )
        finally:
            stop.touch()
            reader.wait(timeout=120)
        stages = json.loads(out.strip().splitlines()[-1])
        yield {
            "root": root,
            "local": local,
            "person": person,
            "v0": v0,
            "stages": stages,
            "reader": json.loads(seen.read_text()),
        }


def test_readers_see_one_whole_version_while_the_pipeline_writes(company: dict) -> None:
    seen, v1 = company["reader"], company["stages"]["publish"]["publish_id"]
    assert seen["errors"] == [], "a reader failed while the pipeline wrote"
    assert seen["problems"] == [], "a reader saw a snapshot that is not one whole version"
    # It read the old version during the run and the new one after the swap, and nothing else.
    assert set(seen["versions"]) == {company["v0"], v1}
    assert seen["rounds"] >= 20
    assert company["stages"]["publish"]["tables"]["marts.customer_churn_scores"] > 0


def _identity(company: dict) -> Identity:
    """Everything known about the person: from the source (truth) and as the warehouse sees it."""
    person = company["person"]
    with open_destination(get_settings()) as dest:
        ident = resolve_identity(dest.fetchall, email=person["emails"][0])
    # The warehouse must know them by every id the source gives them.
    assert set(person["contact_ids"]) <= ident.contact_ids
    assert set(person["anonymous_ids"]) <= ident.anonymous_ids
    assert ident.customer_keys and ident.order_ids
    ident.emails |= {e.strip().lower() for e in person["emails"]}
    return ident


def _erase(company: dict, *flags: str) -> str:
    email = company["person"]["emails"][-1]  # another record's spelling than the one resolved
    return _run(
        [sys.executable, "-m", "privacy", "erase", "--email", email, *flags],
        company["root"] / f"erase{''.join(flags)}.log",
    )


def _layers(traces: list[str]) -> set[str]:
    return {
        t.split(".")[0] if t.startswith(("warehouse", "published")) else t.split(" ")[0]
        for t in traces
    }


@pytest.fixture(scope="module")
def erased(company: dict) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("C720_LOCAL_DIR", str(company["local"]))
        ident = _identity(company)
        before = find_traces(ident, include_views=True)
        dry_run = _erase(company, "--dry-run")
        after_dry_run = find_traces(ident, include_views=True)
        output = _erase(company)
        after = find_traces(ident, include_views=True)
        settings = get_settings()
        with open_destination(settings) as dest:
            audit = dest.fetchall("select target, rows_removed from privacy.erasure_audit")
            listed = dest.fetchall(
                "select subject_kind, subject_hash from privacy.suppression_list"
            )
        files = {
            path: path.read_bytes()
            for path in [settings.warehouse_path, settings.published]
            + [p for p in settings.reports_dir.rglob("*") if p.is_file()]
        }
        yield {
            "ident": ident,
            "before": before,
            "dry_run": dry_run,
            "after_dry_run": after_dry_run,
            "output": output,
            "after": after,
            "audit": audit,
            "listed": listed,
            "files": files,
            "settings": settings,
        }


def test_the_person_is_everywhere_before_and_a_dry_run_changes_nothing(erased: dict) -> None:
    layers = _layers(erased["before"])
    for layer in (
        "warehouse:raw",
        "warehouse:staging",  # the SCD2 snapshot table and the views over raw
        "warehouse:intermediate",  # identity graph, incremental sessions
        "warehouse:marts",  # the 720 view, facts, scores and score history
        "warehouse:ml",
        "published:marts",
        "crm:c720_customer_scores",
    ):
        assert layer in layers, f"the search finds no trace in {layer}: it could not fail"
    assert any("raw.quarantine" in t for t in erased["before"])
    assert "rows that would be removed" in erased["dry_run"]
    assert erased["after_dry_run"] == erased["before"]


def test_after_erasure_no_trace_remains_in_any_layer(erased: dict) -> None:
    assert erased["after"] == [], erased["after"]
    assert "no trace left" in erased["output"]
    ident = erased["ident"]
    # Not even as bytes: the warehouse file is rewritten, the snapshot and reports too.
    needles = [n.encode() for n in ident.text_needles()]
    for path, content in erased["files"].items():
        lowered = content.lower()
        assert not [n for n in needles if n in lowered], f"{path} still holds the person"
    # The logs say what was removed, by a hash: no email and no id in clear.
    removed = dict(erased["audit"])
    assert removed["warehouse:raw.crm_contacts"] == len(ident.contact_ids)
    assert removed["warehouse:staging.snap_crm__contacts"] >= len(ident.contact_ids)
    assert removed["warehouse:raw.quarantine"] >= 1
    assert removed["crm:c720_customer_scores"] >= 1
    stored = " ".join([t for t, _ in erased["audit"]] + [h for _, h in erased["listed"]])
    assert not [n for n in ident.text_needles() if n.lower() in stored.lower()]
    kinds = {k for k, _ in erased["listed"]}
    assert kinds == {"email", "contact", "order", "anon"}


def _the_source_still_holds_them(company: dict, ident: Identity) -> str:
    """The CRM updates the person's records; new events log them in on an old and a new cookie."""
    sources = company["local"] / "sources"
    ids = ",".join(f"'{i}'" for i in sorted(ident.contact_ids))
    later = f"{END + timedelta(days=1)} 09:00:00"
    crm = sqlite3.connect(sources / "crm.sqlite")
    crm.execute(f"update contacts set updated_at = ? where contact_id in ({ids})", [later])
    crm.execute(f"update orders set updated_at = ? where contact_id in ({ids})", [later])
    crm.commit()
    crm.close()
    day = END + timedelta(days=1)
    folder = sources / "events" / f"date={day}"
    folder.mkdir()
    new_cookie = "cookie-after-erasure"
    old_cookie = sorted(ident.anonymous_ids)[0]
    contact = str(min(ident.contact_ids))
    events = [
        (new_cookie, None, "page_view"),
        (new_cookie, contact, "login"),
        (old_cookie, None, "page_view"),
        ("someone-else", None, "page_view"),
    ]
    lines = [
        json.dumps(
            {
                "event_id": f"after-{i}",
                "event_type": kind,
                "collector_timestamp": f"{day}T10:00:0{i}Z",
                "anonymous_id": anon,
                "user_id": user,
                "platform": "web",
            }
        )
        for i, (anon, user, kind) in enumerate(events)
    ]
    (folder / "part-00000.json.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return new_cookie


def test_the_next_ingest_and_build_do_not_bring_them_back(company: dict, erased: dict) -> None:
    ident = erased["ident"]
    new_cookie = _the_source_still_holds_them(company, ident)
    out = _run(
        [sys.executable, str(HERE / "pipeline_stages.py"), "--date", END.isoformat(), "--no-ml"],
        company["root"] / "pipeline-after-erasure.log",
    )
    stages = json.loads(out.strip().splitlines()[-1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("C720_LOCAL_DIR", str(company["local"]))
        with open_destination(get_settings()) as dest:
            suppressed = dict(
                dest.fetchall(
                    "select table_name, sum(rows_removed) from privacy.suppression_log group by 1"
                )
            )
            someone_else = dest.fetchall(
                "select count(*) from raw.web_events where anonymous_id = 'someone-else'"
            )[0][0]
        ident.anonymous_ids.add(new_cookie)
        traces = find_traces(ident, include_views=True)
    # The load did bring them (so the check could fail) and suppression took them out again.
    assert stages["crm"]["rows_changed"] >= len(ident.contact_ids)
    assert suppressed["raw.crm_contacts"] >= len(ident.contact_ids)
    assert suppressed["raw.crm_orders"] >= 1
    assert suppressed["raw.web_events"] == 3
    assert someone_else == 1, "suppression removed a stranger's event"
    assert traces == [], traces
