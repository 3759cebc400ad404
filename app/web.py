"""The FastAPI app: server-rendered pages (Jinja2), inline SVG charts, local CSS only.

Every page handler is a plain (sync) function: FastAPI runs it in its thread pool and
DuckDB releases the GIL while it queries, so slow pages do not hold up others.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app import charts, metrics, queries, registry
from app.snapshot import Reader, Snapshot, SnapshotMissing
from customer720.settings import Settings, get_settings

HERE = Path(__file__).resolve().parent
REASON_SPLIT = re.compile(r"\s*(?:;|\||\n)\s*")


def _money(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.2f}"


def _pct(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.0%}"


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def _reasons(text: str | None) -> list[str]:
    return [part for part in REASON_SPLIT.split(text or "") if part]


def _label(value: str | None) -> str:
    return (value or "–").replace("_", " ")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    snapshot = Snapshot(settings.published)
    app = FastAPI(title="customer720", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    env.filters.update(money=_money, pct=_pct, when=_when, reasons=_reasons, label=_label)
    env.globals["moment_label"] = _label

    def page(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    @app.exception_handler(SnapshotMissing)
    def _missing(request: Request, exc: SnapshotMissing) -> HTMLResponse:
        return page(request, "missing.html", status_code=503, message=str(exc))

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        with snapshot.cursor() as r:
            overview = r.version.pages.get("home") or queries.snapshot_overview(r)
            r.version.pages["home"] = overview
        return page(request, "home.html", overview=overview)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        version = snapshot.version()
        return JSONResponse({"publish_id": version.publish_id})

    @app.get("/search", response_class=HTMLResponse)
    def search(request: Request, q: str = "") -> HTMLResponse:
        with snapshot.cursor() as r:
            found = queries.find_customers(r, q)
        if len(found) == 1:
            return RedirectResponse(f"/customer/{found[0]['customer_key']}", status_code=303)
        return page(request, "search.html", q=q, found=found)

    @app.get("/customer/{key}", response_class=HTMLResponse)
    def customer(request: Request, key: str) -> HTMLResponse:
        if not queries.CUSTOMER_KEY.match(key):
            raise HTTPException(404, "not a customer key")
        with snapshot.cursor() as r:
            person = queries.customer(r, key)
            if person is None:
                raise HTTPException(404, f"no customer {key} in this snapshot")
            touchpoints = queries.touchpoints(r, key)
            history = queries.churn_history(r, key)
            context = {
                "p": person,
                "ids": queries.identities(r, key, person),
                "orders": queries.orders(r, key),
                "sessions": queries.sessions(r, key),
                "by_channel": queries.sessions_by(r, key, "channel_group"),
                "by_device": queries.sessions_by(r, key, "platform || '/' || device_type"),
                "history": history,
                "recs": queries.recommendations(r, key),
                "moments": queries.moments(r, key),
                "touchpoints": touchpoints,
                "publish_id": r.version.publish_id,
            }
        context["timeline"] = charts.timeline_svg(touchpoints)
        context["legend"] = charts.legend(touchpoints)
        context["trend"] = charts.trend_svg(history)
        return page(request, "customer.html", **context)

    @app.get("/segments", response_class=HTMLResponse)
    def segments(request: Request) -> HTMLResponse:
        with snapshot.cursor() as r:
            if "segments" not in r.version.pages:
                r.version.pages["segments"] = _segments(r)
            context = r.version.pages["segments"]
        return page(request, "segments.html", publish_id=r.version.publish_id, **context)

    @app.get("/metrics", response_class=HTMLResponse)
    def metrics_page(request: Request) -> HTMLResponse:
        with snapshot.cursor() as r:
            publish_id = r.version.publish_id
            if "metrics" not in r.version.pages:
                try:
                    r.version.pages["metrics"] = metrics.overview(settings)
                except metrics.MetricsUnavailable as err:
                    return page(request, "metrics.html", error=str(err), publish_id=publish_id)
            context = r.version.pages["metrics"]
        return page(request, "metrics.html", publish_id=publish_id, **context)

    @app.get("/models", response_class=HTMLResponse)
    def models(request: Request) -> HTMLResponse:
        summaries = [registry.model_summary(settings.model_dir, k) for k in registry.KINDS]
        return page(
            request,
            "models.html",
            summaries=summaries,
            reports=registry.reports(settings.reports_dir),
        )

    @app.get("/reports/{kind}/{name}/{file}")
    def report(kind: str, name: str, file: str) -> FileResponse:
        path = registry.report_file(settings.reports_dir, kind, name, file)
        if path is None:
            raise HTTPException(404, "no such report")
        return FileResponse(path)

    return app


# Risk bands and journey stages in their natural order; anything else alphabetically after.
NATURAL_ORDER = {
    name: i
    for i, name in enumerate(
        ["high", "medium", "low", "not scored"]
        + ["anonymous", "lead", "first_purchase", "repeat", "at_risk", "lapsed"]
    )
}


def _order(name: str) -> tuple[int, str]:
    return (NATURAL_ORDER.get(name, len(NATURAL_ORDER)), name)


def _matrix(rows: list[dict], row_key: str, col_key: str, value_key: str) -> dict:
    """Rows and columns (sorted) and the cell values of a long table, for a cross-tab."""
    row_names = sorted({r[row_key] for r in rows}, key=_order)
    col_names = sorted({r[col_key] for r in rows}, key=_order)
    cells = {(r[row_key], r[col_key]): r[value_key] for r in rows}
    peak = max((v for v in cells.values() if v), default=1)
    return {"rows": row_names, "cols": col_names, "cells": cells, "peak": peak}


def _segments(r: Reader) -> dict:
    """The segments page's figures (one version's, so computed once per publish)."""
    risk_value = queries.risk_by_value(r)
    at_risk_count, at_risk = queries.at_risk_active(r)
    lapsed_count, lapsed = queries.lapsed_win_back(r)
    return {
        "risk_value": _matrix(risk_value, "risk_band", "value_tier", "persons"),
        "risk_revenue": _matrix(risk_value, "risk_band", "value_tier", "revenue"),
        "persona_stage": _matrix(
            queries.persona_by_stage(r), "persona", "journey_stage", "persons"
        ),
        "at_risk": at_risk,
        "at_risk_count": at_risk_count,
        "lapsed": lapsed,
        "lapsed_count": lapsed_count,
        "moment_counts": queries.moment_counts(r),
        "moments": queries.moments(r),
    }
