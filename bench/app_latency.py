"""Latency of the analysts' app on a published snapshot: p50 / p95 / max per page.

    python -m bench.app_latency [--requests 400] [--port 8599]     # after make run

Starts ``python -m app serve`` on the snapshot of ``C720_LOCAL_DIR`` (one worker, as
``make app``), warms it with one request per page kind, then sends a bounded loop of
requests over one keep-alive connection, as a browser tab would: customer pages of
persons drawn at random (seeded), searches by CRM contact id (each answered by a
redirect, then the page), the segments, home, models and metrics pages, in turn. Prints a table
and writes ``bench/results/app-latency-<time>.json``. A measurement, not a test: the
machine is shared, so read the load printed beside it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from customer720.settings import get_settings

RESULTS = Path(__file__).resolve().parent / "results"


def _wait(port: int, server: subprocess.Popen) -> None:
    for _ in range(600):
        try:
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            con.request("GET", "/healthz")
            if con.getresponse().status == 200:
                return
        except OSError:
            if server.poll() is not None:
                raise SystemExit("the app exited; see its output above") from None
            time.sleep(0.1)
    raise SystemExit("the app did not answer /healthz")


def _targets(published: Path, n: int, seed: int) -> list[tuple[str, str]]:
    with duckdb.connect(str(published), read_only=True) as con:
        keys = [
            k for (k,) in con.execute("select customer_key from marts.dim_customer_720").fetchall()
        ]
        contacts = [
            c
            for (c,) in con.execute(
                "select primary_contact_id from marts.dim_customer_720 where primary_contact_id is not null"
            ).fetchall()
        ]
    rng = random.Random(seed)
    kinds = [
        "customer",
        "customer",
        "customer",
        "search",
        "customer",
        "segments",
        "home",
        "models",
        "metrics",
    ]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        if kind == "customer":
            out.append((kind, f"/customer/{rng.choice(keys)}"))
        elif kind == "search":
            out.append((kind, f"/search?q={rng.choice(contacts)}"))
        else:
            out.append(
                (
                    kind,
                    {
                        "segments": "/segments",
                        "home": "/",
                        "models": "/models",
                        "metrics": "/metrics",
                    }[kind],
                )
            )
    return out


def _get(con: http.client.HTTPConnection, path: str) -> int:
    """GET ``path``, following one redirect (a search that found one person)."""
    con.request("GET", path)
    resp = con.getresponse()
    resp.read()
    if resp.status == 303:
        return _get(con, resp.getheader("location"))
    return resp.status


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--port", type=int, default=8599)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    settings = get_settings()
    targets = _targets(settings.published, args.requests, args.seed)
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(args.port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait(args.port, server)
        con = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
        for kind in ("customer", "search", "segments", "home", "models", "metrics"):  # warm-up
            _get(con, next(path for k, path in targets if k == kind))
        load_before = os.getloadavg()[0]
        times: dict[str, list[float]] = {}
        for kind, path in targets:
            start = time.perf_counter()
            status = _get(con, path)
            elapsed = (time.perf_counter() - start) * 1000
            if status != 200:
                raise SystemExit(f"{path}: HTTP {status}")
            times.setdefault(kind, []).append(elapsed)
        load_after = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
    every = [t for ts in times.values() for t in ts]
    with duckdb.connect(str(settings.published), read_only=True) as db:
        persons = db.execute("select count(*) from marts.dim_customer_720").fetchone()[0]
    rows = {
        kind: {
            "n": len(ts),
            "p50_ms": round(statistics.median(ts), 1),
            "p95_ms": round(_pct(ts, 0.95), 1),
            "max_ms": round(max(ts), 1),
        }
        for kind, ts in sorted(times.items())
    }
    rows["all"] = {
        "n": len(every),
        "p50_ms": round(statistics.median(every), 1),
        "p95_ms": round(_pct(every, 0.95), 1),
        "max_ms": round(max(every), 1),
    }
    print(
        f"app latency on {settings.published} ({persons:,} persons), load {load_before:.1f} → {load_after:.1f}"
    )
    print(f"{'page':10} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind, r in rows.items():
        print(f"{kind:10} {r['n']:>5} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['max_ms']:>8}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"app-latency-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(
        json.dumps(
            {
                "persons": persons,
                "requests": args.requests,
                "load": [load_before, load_after],
                "pages": rows,
            },
            indent=2,
        )
    )
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
