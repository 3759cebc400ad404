"""The app and the docs site in headless Chromium, on a small simulated company.

A module fixture simulates 300 customers × 210 days, runs the real chain
(`python -m orchestrate run`), builds `make docs`' site with no network (a network
namespace of its own when the machine allows it) and starts `python -m app serve`. The
browser then searches a simulated person by a CRM contact id and reads what an account
team would: their identities (as many CRM contacts as the simulator's truth links to
the person), orders, sessions, churn with reasons, recommendations and the timeline.
Any request that fails, or that leaves localhost / the docs folder, fails the test.
Screenshots go to the test's tmp folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# 210 days: the churn model needs two labelled cutoffs (cutoff + 90-day horizon <= as_of,
# cutoffs 30 days apart); 120 days gives one and training stops the chain.
CUSTOMERS, DAYS, SEED = 300, 210, 3

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: `make chromium` installs it"
)


def _run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        code = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        pytest.fail(f"{' '.join(cmd)} failed ({code}):\n{tail}")


def _offline(cmd: list[str]) -> list[str]:
    """``cmd`` in a network namespace with no interface but loopback, when allowed."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n", *cmd]
    return cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("app")
    local = root / "local"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C720_", "AIRFLOW"))}
    env.update(C720_LOCAL_DIR=str(local), C720_TASK_RETRIES="0")
    sources = local / "sources"
    _run(
        [sys.executable, "-m", "simulator", "--customers", str(CUSTOMERS), "--days", str(DAYS)]
        + ["--seed", str(SEED), "--out", str(sources), "-q"],
        env,
        root / "simulate.log",
    )
    _run([sys.executable, "-m", "orchestrate", "run"], env, root / "run.log")
    _run(_offline([sys.executable, "-m", "app", "docs"]), env, root / "docs.log")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        stdout=(root / "app.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to a minute on a busy machine: not a timing assertion
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail((root / "app.log").read_text())
                time.sleep(0.2)
        yield {
            "root": root,
            "local": local,
            "base": base,
            "truth": sources / "truth",
            "published": local / "published.duckdb",
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(company: dict) -> Iterator:
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, company: dict) -> Iterator:
    """A page that records failed requests and refuses (and records) any off-site one."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    failures: list[str] = []
    docs = company["local"] / "docs"

    def guard(route) -> None:
        url = route.request.url
        local = url.startswith(company["base"]) or url.startswith(f"file://{docs}")
        if local or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            failures.append(f"off-site: {url}")
            route.abort()

    pg.route("**/*", guard)
    pg.on("requestfailed", lambda r: failures.append(f"failed: {r.url} ({r.failure})"))
    pg.on("response", lambda r: r.status >= 400 and failures.append(f"{r.status}: {r.url}"))
    pg.failures = failures
    yield pg
    context.close()


def _person(company: dict) -> dict:
    """A simulated person the whole page has something to show for: several CRM contacts
    if any, orders, sessions, a churn score and recommendations."""
    contacts = pd.read_parquet(company["truth"] / "contact_persons.parquet")
    with duckdb.connect(str(company["published"]), read_only=True) as con:
        con.register("truth", contacts)
        row = con.execute(
            """with people as (
                   select t.person_id, count(distinct t.contact_id) as contacts,
                          min(t.contact_id) as contact_id
                     from truth t group by 1),
                   keyed as (
                   select p.*, d.customer_key, d.order_count, d.session_count,
                          (select count(*) from marts.customer_recommendations r
                            where r.customer_key = d.customer_key) as recs,
                          (select count(*) from marts.fct_touchpoints tp
                            where tp.customer_key = d.customer_key) as touchpoints
                     from people p join marts.dim_customer_720 d
                       on d.primary_contact_id = p.contact_id
                    where d.churn_probability is not null and d.order_count > 0
                      and d.session_count > 0)
               select * from keyed where recs > 0
                order by contacts desc, touchpoints desc, customer_key limit 1"""
        ).fetchone()
        names = [d[0] for d in con.description]
    assert row, "no simulated person with orders, sessions, a score and recommendations"
    return dict(zip(names, row, strict=True))


def test_account_team_finds_a_person_and_sees_their_720_view(page, company: dict) -> None:
    person = _person(company)
    page.goto(company["base"] + "/")
    page.fill("#q", str(person["contact_id"]))
    page.press("#q", "Enter")
    page.wait_for_url(f"**/customer/{person['customer_key']}")
    shot = company["root"] / "customer.png"
    page.screenshot(path=str(shot), full_page=True)

    text = page.inner_text
    assert text("[data-testid=customer-key]") == person["customer_key"]
    assert int(text("[data-testid=contact-count]")) == person["contacts"]
    assert str(person["contact_id"]) in text("[data-testid=contact-ids]")
    # anonymous ids: only those that ever logged in can be stitched, so at most the truth's
    # count, and every one listed is the person's own
    anonymous = pd.read_parquet(company["truth"] / "anonymous_persons.parquet")
    theirs = set(anonymous.loc[anonymous["person_id"] == person["person_id"], "anonymous_id"])
    assert 0 < int(text("[data-testid=anonymous-count]")) <= len(theirs)
    listed = page.locator("[data-testid=anonymous-ids] code").all_inner_texts()
    assert listed and set(listed) <= theirs
    assert int(text("[data-testid=order-count]")) == person["order_count"]
    assert page.locator("[data-testid=orders] tr").count() == min(person["order_count"], 10) + 1
    assert text("[data-testid=session-count]").startswith(str(person["session_count"]))
    assert text("[data-testid=churn-probability]").endswith("%")
    assert page.locator("[data-testid=churn-reasons] li").count() > 0
    assert page.locator("[data-testid=churn-trend] circle").count() >= 1
    assert page.locator("[data-testid=recommendations] tr").count() == person["recs"] + 1
    timeline = page.locator("[data-testid=timeline-chart]")
    assert timeline.is_visible()
    assert timeline.locator("circle").count() == min(person["touchpoints"], 5000)
    assert (
        page.evaluate("getComputedStyle(document.querySelector('header.top')).backgroundColor")
        == "rgb(19, 41, 75)"
    ), "the stylesheet did not load"
    assert not page.failures, sorted(set(page.failures))[:10]
    assert shot.stat().st_size > 0


def test_segments_keep_at_risk_apart_from_lapsed(page, company: dict) -> None:
    page.goto(company["base"] + "/segments")
    page.screenshot(path=str(company["root"] / "segments.png"), full_page=True)
    at_risk = page.locator("[data-testid=at-risk] td.stage").all_inner_texts()
    win_back = page.locator("[data-testid=win-back] td.stage").all_inner_texts()
    assert at_risk or win_back
    assert "lapsed" not in at_risk
    assert set(win_back) <= {"lapsed"}
    assert page.locator("[data-testid=risk-by-value] td").count() > 0
    assert page.locator("[data-testid=persona-by-stage] td").count() > 0
    assert not page.failures, sorted(set(page.failures))[:10]


def test_models_page_shows_champions_and_opens_a_report(page, company: dict) -> None:
    page.goto(company["base"] + "/models")
    page.screenshot(path=str(company["root"] / "models.png"), full_page=True)
    assert page.inner_text("[data-testid=champion-churn]")  # a version, or "none" with the fallback
    assert page.locator("[data-testid=metrics-churn] tr").count() > 0
    page.click("[data-testid=reports-churn] a >> nth=0")
    page.wait_for_load_state()
    assert "/reports/churn/" in page.url
    assert page.locator("img, svg, table").count() > 0
    assert not page.failures, sorted(set(page.failures))[:10]


def test_metrics_page_answers_from_the_semantic_layer(page, company: dict) -> None:
    page.goto(company["base"] + "/metrics")
    page.screenshot(path=str(company["root"] / "metrics.png"), full_page=True)
    today = page.locator("[data-testid=metrics-1] tr")
    header = today.nth(0).locator("th").all_inner_texts()
    values = dict(zip(header, today.nth(1).locator("td").all_inner_texts(), strict=True))
    with duckdb.connect(str(company["published"]), read_only=True) as con:
        persons = con.execute("select count(*) from marts.dim_customer_720").fetchall()[0][0]
    assert values["customers"].replace(",", "") == str(persons)
    assert page.locator("[data-testid=metrics-2] tr").count() > 1  # revenue by month
    assert "revenue_at_risk" in page.inner_text("[data-testid=metric-catalogue]")
    assert not page.failures, sorted(set(page.failures))[:10]


def test_docs_site_works_offline_and_is_styled(page, company: dict) -> None:
    index = company["local"] / "docs" / "index.html"
    page.goto(index.as_uri())
    page.screenshot(path=str(company["root"] / "docs.png"), full_page=True)
    assert (
        page.evaluate("getComputedStyle(document.querySelector('header.top')).backgroundColor")
        == "rgb(19, 41, 75)"
    )
    for testid in ("dbt-docs", "data-docs", "reports-churn"):
        assert page.locator(f"[data-testid={testid}]").count() == 1, testid

    page.click("[data-testid=reports-churn] a >> nth=0")
    page.wait_for_load_state("load")
    page.screenshot(path=str(company["root"] / "docs-churn-report.png"), full_page=True)
    assert page.evaluate("document.styleSheets.length") > 0

    page.goto(index.as_uri())
    page.click("[data-testid=data-docs] a >> nth=0")
    page.wait_for_load_state("load")
    # the data docs' own bootstrap, from the local copy: a styled navbar
    assert page.evaluate("document.styleSheets.length") > 1

    page.goto(index.as_uri())
    page.click("[data-testid=dbt-docs]")
    page.wait_for_load_state("load")
    page.wait_for_function("document.body.innerText.includes('customer720')", timeout=60_000)
    # a model's page: its columns come from the catalog inside the one static file
    page.goto(page.url.split("#")[0] + "#!/model/model.customer720.dim_customer_720")
    page.wait_for_function("document.body.innerText.includes('churn_probability')", timeout=60_000)
    page.screenshot(path=str(company["root"] / "docs-dbt.png"), full_page=True)
    assert page.evaluate("document.styleSheets.length") > 0
    assert not page.failures, sorted(set(page.failures))[:10]
