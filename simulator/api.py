"""The Python API: ``generate`` a company, ``append`` days to it. The CLI and tests call these."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import make_url

from simulator import crm, state
from simulator.behaviour import Company
from simulator.config import SimulationConfig
from simulator.eventfiles import build_day, day_folder, write_gzip
from simulator.export import export_views, to_text_ids
from simulator.truth import write_truth

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (days done, days total)
LATE_DIR = state.STATE_DIR / "late_files"


def generate(config: SimulationConfig, progress: Progress | None = None) -> dict:
    """Simulate a fresh company into ``config.out`` (replacing one that is there) and return the summary."""
    out = Path(config.out)
    for stale in ("events", "truth", "simulation.json"):
        path = out / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    if config.crm_url is None and (out / "crm.sqlite").exists():
        (out / "crm.sqlite").unlink()  # a fresh file, so the same seed gives the same bytes
    out.mkdir(parents=True, exist_ok=True)
    company = Company.create(
        config.seed,
        config.start,
        config.customers,
        config.anonymous_visitor_share,
        config.days,
        config.warmup_days,
    )
    meta = {
        "customers": config.customers,
        "dirty": config.dirty,
        "gzip_level": config.gzip_level,
        "crm_url": _storable_url(config.crm_url),
        "event_lines": 0,
        "event_files": 0,
        "export": config.export,
        "text_ids": config.text_ids,
        "price_shift_from": config.price_shift_from.isoformat()
        if config.price_shift_from
        else None,
        "price_shift_factor": config.price_shift_factor,
    }
    if config.stationary:  # only then: a default company's files keep their bytes
        meta["warmup_days"] = config.warmup_days
    return _run(company, out, config.warmup_days + config.days, meta, config.crm_url, progress)


def append(
    out_dir: Path | str,
    days: int,
    crm_url: str | None = None,
    progress: Progress | None = None,
    dirty: dict[str, float] | None = None,
) -> dict:
    """Add the next ``days`` days to the company in ``out_dir``; old event files stay untouched.

    ``dirty`` replaces the company's own dirty modes for these days only (a bad delivery:
    their event files and this CRM export); later appends go back to the company's own.
    """
    out = Path(out_dir)
    if days < 1:
        raise ValueError(f"append days={days}: add at least 1 day")
    company, meta = state.load(out)
    url = crm_url or meta.get("crm_url")
    if url == "***":
        raise ValueError(
            "the CRM was written to a URL with a password; pass it again with --crm-url"
        )
    return _run(company, out, days, meta, url, progress, dirty)


def _price_factor(meta: dict, day: date) -> float:
    """The day's price multiplier (the injected price shift; 1 before it or without one)."""
    start = meta.get("price_shift_from")
    return (
        float(meta.get("price_shift_factor", 1.0))
        if start and day >= date.fromisoformat(start)
        else 1.0
    )


def _storable_url(url: str | None) -> str | None:
    if url is None:
        return None
    parsed = make_url(url)
    return "***" if parsed.password else url


def _run(
    company: Company,
    out: Path,
    days: int,
    meta: dict,
    crm_url: str | None,
    progress: Progress | None,
    dirty_override: dict[str, float] | None = None,
) -> dict:
    dirty = meta["dirty"] if dirty_override is None else dirty_override
    text_ids = bool(meta.get("text_ids"))  # companies made before export mode: integers
    events_dir = out / "events"
    first_day = company.next_day
    last_day = first_day + days - 1
    day_str = lambda d: (company.start + timedelta(days=d)).isoformat()  # noqa: E731
    reports = (
        [pd.read_parquet(out / "truth" / "dirty_events.parquet")]
        if (out / "truth" / "dirty_events.parquet").exists()
        else []
    )
    late_pending = _load_late(out)
    state.drop_spill(out)  # parts of a run that did not finish
    company.stationary = "warmup_days" in meta  # steady: no season either
    writes: list[Future] = []
    # Compression runs in threads (zlib releases the GIL) while the next day is simulated.
    with ThreadPoolExecutor(max_workers=2) as pool:

        def submit(path: Path, data: bytes) -> None:
            while len([f for f in writes if not f.done()]) > 4:
                writes[0].result()
                writes.pop(0)
            writes.append(pool.submit(write_gzip, path, data, meta["gzip_level"]))
            meta["event_files"] += 1

        for d in range(first_day, last_day + 1):
            # Late files from earlier runs land in their (old) folder on their arrival day.
            for item in [x for x in late_pending if x["landing"] <= d]:
                data = item["path"].read_bytes()
                meta["event_lines"] += data.count(b"\n")
                submit(day_folder(events_dir, item["date"]) / "part-00001.json.gz", data)
                item["path"].unlink()
                late_pending.remove(item)
            company.price_factor = _price_factor(meta, company.start + timedelta(days=d))
            ev = company.step()
            rng = np.random.default_rng([company.seed, d + 1, 0xD1E7])
            files = build_day(ev, company.cookies["anonymous_id"], day_str(d), dirty, rng, text_ids)
            meta["event_lines"] += files.n_lines  # lines on disk; late lines count when they land
            submit(day_folder(events_dir, day_str(d)) / "part-00000.json.gz", files.main)
            if files.late:
                landing = d + files.late_landing_offset
                if landing <= last_day:
                    meta["event_lines"] += files.late.count(b"\n")
                    submit(day_folder(events_dir, day_str(d)) / "part-00001.json.gz", files.late)
                else:
                    late_pending.append(_hold_late(out, day_str(d), landing, files.late))
            if len(files.dirty):
                reports.append(files.dirty)
            state.spill(company, out)  # the history goes to disk; memory stays bounded
            if progress:
                progress(d - first_day + 1, days)
        for f in writes:
            f.result()

    dirty_events = (
        pd.concat(reports, ignore_index=True)
        if reports
        else pd.DataFrame(
            {
                c: pd.Series(dtype=object)
                for c in ("date", "mode", "detail", "file", "line", "event_id")
            }
        )
    )
    views, dirty_crm = _crm_views(company, dirty)
    if meta.get("export"):
        views = export_views(views)
    elif text_ids:
        views = to_text_ids(views)
    keyless = {"contacts", "orders"} if dirty.get("duplicate_crm_rows") else set()
    url = crm_url or f"sqlite:///{out.resolve() / 'crm.sqlite'}"
    log.info("writing the CRM tables to %s", make_url(url).render_as_string(hide_password=True))
    rows = crm.write_tables(url, views, keyless)
    counts = write_truth(company, out, dirty_events, dirty_crm, text_ids)
    state.save(
        company,
        out,
        {
            **meta,
            "late_pending": [{"date": x["date"], "landing": x["landing"]} for x in late_pending],
        },
    )
    state.drop_spill(out)

    # a stationary company's warm-up is history before the days asked for
    warmup = int(meta.get("warmup_days", 0))
    start: date = company.start + timedelta(days=warmup)
    summary = {
        "seed": company.seed,
        "start": start.isoformat(),
        "days": company.next_day - warmup,
        "end": (company.start + timedelta(days=company.next_day - 1)).isoformat(),
        "customers": meta["customers"],
        "crm_url": meta["crm_url"] or "sqlite:///<out>/crm.sqlite",
        "dirty_modes": dirty,
        "export": bool(meta.get("export")),
        "text_ids": text_ids,
        "rows": rows,
        "events": {
            "lines": meta["event_lines"],
            "files": meta["event_files"],
            "late_files_pending": len(late_pending),
        },
        "truth": counts,
        "dirty_injected": _dirty_counts(dirty_events, dirty_crm),
    }
    if warmup:
        summary |= {"stationary": True, "history_start": company.start.isoformat()}
    (out / "simulation.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _crm_views(
    company: Company, dirty: dict[str, float]
) -> tuple[dict[str, list[crm.Batches]], pd.DataFrame]:
    """The CRM tables as batches (streamed from the company's tables) and the dirty CRM rows."""
    end_sec = company.start_sec + company.next_day * 86_400 - 1
    seed = company.seed
    negative = dirty.get("negative_quantities", 0.0)
    contacts, bad_contacts = crm.contacts_view(company.contacts, end_sec, seed, dirty)

    def lifecycle(name: str, view: Callable[[pd.DataFrame], pd.DataFrame]) -> crm.Batches:
        return crm.mapped(lambda: state.frames(company, name), view)

    def items() -> Iterator[pd.DataFrame]:
        uniform = crm.negative_quantities_uniform(seed)  # one per pass: ids go up again
        for b in state.frames(company, "order_items"):
            yield crm.items_view(b, end_sec, negative, uniform)

    orders = lifecycle("orders", lambda o: crm.orders_view(o, end_sec))
    views = {
        "contacts": [crm.one_batch(contacts)],
        "products": [crm.one_batch(crm.products_view(company.catalog, end_sec, company.start_sec))],
        "orders": [orders],
        "order_items": [items],
        "tickets": [lifecycle("tickets", lambda t: crm.tickets_view(t, end_sec))],
        "email_events": [
            lifecycle(
                "email_events", lambda e: crm.simple_view(e, "occurred_sec", "occurred_at", end_sec)
            )
        ],
        "survey_responses": [
            lifecycle(
                "survey_responses",
                lambda s: crm.simple_view(s, "responded_sec", "responded_at", end_sec),
            )
        ],
    }
    bad = [bad_contacts]
    if negative:
        uniform = crm.negative_quantities_uniform(seed)
        cols = ["order_item_id", "created_sec"]
        bad += [
            crm.negative_items(b, end_sec, negative, uniform)
            for b in state.frames(company, "order_items", cols)
        ]
    if rate := dirty.get("duplicate_crm_rows"):
        # The copies follow all rows of their table, as in a broken export's second page.
        dup_contacts = crm.duplicates(
            contacts, "contacts", rate, crm.duplicates_uniform(seed, "contacts")
        )
        views["contacts"].append(crm.one_batch(dup_contacts))

        def dup_orders() -> Iterator[pd.DataFrame]:
            uniform = crm.duplicates_uniform(seed, "orders")
            for o in orders():
                yield crm.duplicates(o, "orders", rate, uniform)

        views["orders"].append(dup_orders)
        bad.append(
            crm.bad_rows("contacts", "duplicate_crm_rows", dup_contacts["contact_id"].to_numpy())
        )
        bad += [
            crm.bad_rows("orders", "duplicate_crm_rows", o["order_id"].to_numpy())
            for o in dup_orders()
        ]
    return views, crm.concat_bad(bad)


def _dirty_counts(events: pd.DataFrame, crm_rows: pd.DataFrame) -> dict[str, int]:
    counts: dict[str, int] = {}
    if len(events):
        originals = events[events["detail"].fillna("") != "copy"]
        counts |= {k: int(v) for k, v in originals["mode"].value_counts().sort_index().items()}
    if len(crm_rows):
        counts |= {k: int(v) for k, v in crm_rows["mode"].value_counts().sort_index().items()}
    return counts


def _hold_late(out: Path, day: str, landing: int, data: bytes) -> dict:
    path = out / LATE_DIR / f"{day}.ndjson"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"date": day, "landing": landing, "path": path}


def _load_late(out: Path) -> list[dict]:
    meta_path = out / state.STATE_DIR / "meta.json"
    if not meta_path.exists():
        return []
    held = json.loads(meta_path.read_text()).get("late_pending", [])
    return [{**x, "path": out / LATE_DIR / f"{x['date']}.ndjson"} for x in held]
