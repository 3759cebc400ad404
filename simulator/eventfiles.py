"""Turn a day's event arrays into gzip NDJSON lines, with the requested dirt mixed in.

Lines are assembled column-wise with Arrow string kernels (one ``"key":value`` fragment
per field, null fields left out), so 20M lines need no Python loop. Gzip headers carry
mtime 0 and no file name, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from simulator import vocab
from simulator.export import EVENT_IDS, text_ids
from simulator.web import EVENT_TYPES, PAGES, SRC_NEWSLETTER, SRC_PROMO

EVENT_DIRTY_MODES = [
    "malformed_json",
    "missing_ids",
    "duplicate_event_ids",
    "late_files",
    "clock_skew",
    "schema_drift",
]
DRIFT_VARIANTS = ["new_field", "renamed_field", "price_as_string"]
SKEW_OFFSETS_MS = np.array(
    [-365 * 86_400_000, -7 * 3_600_000, 3 * 3_600_000, 86_400_000, 2 * 365 * 86_400_000]
)

_SOURCES = list(vocab.TRAFFIC_SOURCES) + [
    (None, "newsletter", "email", None),
    (None, "promo", "email", None),
]
assert len(_SOURCES) == SRC_PROMO + 1 and SRC_NEWSLETTER == len(vocab.TRAFFIC_SOURCES)


# The device fields never vary inside one user agent: one pre-built fragment per agent.
DEVICE_FRAGMENTS = pa.array(
    [
        f'"platform":"{kind[0]}","device_type":"{kind[1]}","user_agent":"{ua}"'
        for kind in vocab.DEVICE_KINDS
        for ua in vocab.USER_AGENTS[kind]
    ]
)


def day_folder(events_dir: Path, day: str) -> Path:
    return events_dir / f"date={day}"


@dataclass
class DayFiles:
    """What to write for one date folder, plus the dirt that went in (for truth/)."""

    main: bytes
    late: bytes  # lines held back to arrive late in part-00001 (empty if none)
    late_landing_offset: int  # days after the folder date that the late file arrives
    dirty: pd.DataFrame = field(default_factory=pd.DataFrame)
    n_lines: int = 0


def _frag(key: str, values: pa.Array, quoted: bool) -> pa.Array:
    """``"key":value`` per row, null where the value is null (the field is then left out)."""
    if quoted:
        return pc.binary_join_element_wise(f'"{key}":"', values, '"', "")
    return pc.binary_join_element_wise(f'"{key}":', values, "")


def _int_array(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, mask=values < 0), pa.string())


def _id_frag(key: str, values: np.ndarray, text: bool) -> pa.Array:
    """An id field: the integer (user_id as its quoted text), or with ``text`` the id's
    text form (export.text_id, quoted); null where there is none (< 0)."""
    if not text:
        return _frag(key, _int_array(values), key == "user_id")
    return _frag(key, pa.array(text_ids(EVENT_IDS[key], values), pa.string()), True)


def _fixed_width(chars: np.ndarray) -> pa.Array:
    """A string array from an (n, width) uint8 array of ASCII, without a per-row copy."""
    n, width = chars.shape
    offsets = np.arange(n + 1, dtype=np.int32) * width
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars))
    )


def _ts(ms: np.ndarray) -> pa.Array:
    """ISO 8601 UTC with milliseconds ('2024-01-31T09:15:02.123Z'); digits are computed, not formatted."""
    ms = np.asarray(ms, dtype=np.int64)
    days = ms // 86_400_000
    rem = ms - days * 86_400_000
    unique_days, inverse = np.unique(days, return_inverse=True)
    date_chars = np.char.encode(
        np.datetime_as_string(unique_days.astype("datetime64[D]")).astype("U10"), "ascii"
    )
    out = np.empty((len(ms), 24), np.uint8)
    out[:, :10] = date_chars.view(np.uint8).reshape(-1, 10)[inverse]
    zero = ord("0")
    fields = [
        (11, rem // 3_600_000, 2),
        (14, rem // 60_000 % 60, 2),
        (17, rem // 1000 % 60, 2),
        (20, rem % 1000, 3),
    ]
    for pos, value, width in fields:
        for k in range(width):
            out[:, pos + width - 1 - k] = zero + value // 10**k % 10
    out[:, 10], out[:, 13], out[:, 16], out[:, 19], out[:, 23] = (
        ord("T"),
        ord(":"),
        ord(":"),
        ord("."),
        ord("Z"),
    )
    return _fixed_width(out)


def _bytes_of(lines: pa.Array | pa.ChunkedArray) -> bytes:
    """The concatenated text of a string array whose values each end with a newline."""
    chunks = lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]
    parts = []
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[
            chunk.offset : chunk.offset + len(chunk) + 1
        ]
        parts.append(memoryview(chunk.buffers()[2])[offsets[0] : offsets[-1]])
    return b"".join(parts)


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    out = np.zeros(n, bool)
    out[idx] = True
    return out


def build_day(
    ev: dict[str, np.ndarray],
    cookie_ids: np.ndarray,
    day: str,
    dirty: dict[str, float],
    rng: np.random.Generator,
    text_ids: bool = False,
) -> DayFiles:
    """The day's files; ``text_ids``: ids in their text form (simulator/export.py)."""
    n = len(ev["event_id"])
    # One draw per event decides its dirt: modes take disjoint slices of [0, 1).
    u = rng.random(n)
    mode = np.full(n, -1, np.int8)
    lo = 0.0
    for i, name in enumerate(EVENT_DIRTY_MODES):
        rate = dirty.get(name, 0.0)
        mode[(u >= lo) & (u < lo + rate)] = i
        lo += rate
    variant = np.full(n, -1, np.int8)
    has_price = ~np.isnan(ev["price"])

    event_id = ev["event_id"].copy()
    anon = cookie_ids[ev["cookie"]]
    missing = np.flatnonzero(mode == EVENT_DIRTY_MODES.index("missing_ids"))
    variant[missing] = rng.integers(0, 2, len(missing))  # 0: no event_id, 1: no anonymous_id
    device_ms = ev["device_ms"].copy()
    skew = mode == EVENT_DIRTY_MODES.index("clock_skew")
    device_ms[skew] += SKEW_OFFSETS_MS[rng.integers(0, len(SKEW_OFFSETS_MS), int(skew.sum()))]
    drift = np.flatnonzero(mode == EVENT_DIRTY_MODES.index("schema_drift"))
    variant[drift] = rng.integers(0, 3, len(drift))
    variant[drift[(variant[drift] == 2) & ~has_price[drift]]] = 0  # price drift needs a price

    eid = pa.array(event_id.astype(str), mask=_mask(n, missing[variant[missing] == 0]))
    aid = pa.array(anon.astype(str), mask=_mask(n, missing[variant[missing] == 1]))
    urls = pa.array([vocab.SITE + p for p in PAGES])
    page = ev["page"]
    static_url = pc.take(urls, pa.array(page, mask=page < 0, type=pa.int32()))
    product_url = pc.binary_join_element_wise(
        vocab.SITE + "/product/", _int_array(np.where(page < 0, ev["product_id"], -1)), ""
    )
    search = pa.array(ev["search"], type=pa.string())
    search_url = pc.binary_join_element_wise(
        vocab.SITE + "/search?q=", pc.replace_substring(search, " ", "+"), ""
    )
    page_url = pc.coalesce(static_url, product_url, search_url, pa.scalar(vocab.SITE + "/"))
    # Referrer: the previous page in the session; on landing, where the visit came from.
    prev = (
        pa.concat_arrays([pa.array([None], pa.string()), page_url.slice(0, max(n - 1, 0))])
        if n
        else page_url
    )
    src = ev["source"]
    landing = src >= 0
    ref_lookup = pa.array([s[0] for s in _SOURCES], pa.string())
    src_idx = pa.array(np.maximum(src, 0), type=pa.int32())
    referrer = pc.if_else(pa.array(landing), pc.take(ref_lookup, src_idx), prev)
    utm = [
        pc.if_else(
            pa.array(landing),
            pc.take(pa.array([s[k] for s in _SOURCES], pa.string()), src_idx),
            pa.scalar(None, pa.string()),
        )
        for k in (1, 2, 3)
    ]
    utm[2] = pc.coalesce(pa.array(ev["campaign"], type=pa.string()), utm[2])
    price_str = pc.cast(pa.array(ev["price"], from_pandas=True), pa.string())
    price_frag = _frag("price", price_str, quoted=False)
    drift_price = _mask(n, drift[variant[drift] == 2])
    comma_price = pc.replace_substring(price_str, ".", ",")
    price_frag = pc.if_else(
        pa.array(drift_price), _frag("price", comma_price, quoted=True), price_frag
    )
    renamed = _mask(n, drift[variant[drift] == 1])
    url_frag = pc.if_else(
        pa.array(renamed), _frag("url", page_url, True), _frag("page_url", page_url, True)
    )
    new_field = _mask(n, drift[variant[drift] == 0])
    extra = pa.array(np.where(new_field, '"app_version":"5.3.0-beta"', None), type=pa.string())

    frags = [
        _frag("event_id", eid, True),
        _frag("event_type", pa.array(EVENT_TYPES[ev["event_type"]], pa.string()), True),
        _frag("device_timestamp", _ts(device_ms), True),
        _frag("collector_timestamp", _ts(ev["collector_ms"]), True),
        _frag("anonymous_id", aid, True),
        _id_frag("user_id", ev["user_id"], text_ids),
        pc.take(
            DEVICE_FRAGMENTS, pa.array(ev["ua"].astype(np.int32))
        ),  # platform, device_type, user_agent
        url_frag,
        _frag("referrer", referrer, True),
        _frag("utm_source", utm[0], True),
        _frag("utm_medium", utm[1], True),
        _frag("utm_campaign", utm[2], True),
        _id_frag("product_id", ev["product_id"], text_ids),
        price_frag,
        _frag("quantity", _int_array(ev["quantity"]), False),
        _frag("search_query", search, True),
        _id_frag("order_id", ev["order_id"], text_ids),
        _id_frag("email_contact_id", ev["email_contact_id"], text_ids),
        extra,
    ]
    body = pc.binary_join_element_wise(*frags, ",", null_handling="skip")
    lines = pc.binary_join_element_wise("{", body, "}\n", "")

    malformed = np.flatnonzero(mode == EVENT_DIRTY_MODES.index("malformed_json"))
    if len(malformed):
        broken = []
        for text, cut in zip(
            lines.take(pa.array(malformed)).to_pylist(), rng.random(len(malformed)), strict=True
        ):
            broken.append(text[: 5 + int(cut * (len(text) - 12))] + "\n")
        lines = pc.replace_with_mask(
            lines, pa.array(_mask(n, malformed)), pa.array(broken, pa.string())
        )

    late = mode == EVENT_DIRTY_MODES.index("late_files")
    dup = np.flatnonzero(mode == EVENT_DIRTY_MODES.index("duplicate_event_ids"))
    on_time = np.flatnonzero(~late)
    main_idx = np.concatenate([on_time, dup])  # a retried event is sent again at the end of the day
    late_idx = np.flatnonzero(late)
    main = _bytes_of(lines.take(pa.array(main_idx, pa.int64())))
    late_bytes = _bytes_of(lines.take(pa.array(late_idx, pa.int64())))

    dirty_rows = np.flatnonzero(mode >= 0)
    line_no = np.full(n, -1, np.int64)
    line_no[on_time] = np.arange(1, len(on_time) + 1)
    line_no[late_idx] = np.arange(1, len(late_idx) + 1)
    file = np.where(late, "part-00001.json.gz", "part-00000.json.gz")
    detail = np.full(n, None, dtype=object)
    detail[missing] = np.where(variant[missing] == 0, "event_id", "anonymous_id")
    detail[drift] = np.array(DRIFT_VARIANTS, dtype=object)[variant[drift]]
    report = pd.DataFrame(
        {
            "date": day,
            "mode": np.array(EVENT_DIRTY_MODES, dtype=object)[mode[dirty_rows]],
            "detail": detail[dirty_rows],
            "file": file[dirty_rows],
            "line": line_no[dirty_rows],
            "event_id": ev["event_id"][dirty_rows].astype(str),
        }
    )
    report.loc[report["mode"] == "duplicate_event_ids", "detail"] = "original"
    if len(dup):  # the duplicate copy's own line number in the file
        dup_lines = pd.DataFrame(
            {
                "date": day,
                "mode": "duplicate_event_ids",
                "detail": "copy",
                "file": "part-00000.json.gz",
                "line": np.arange(len(on_time) + 1, len(on_time) + len(dup) + 1),
                "event_id": ev["event_id"][dup].astype(str),
            }
        )
        report = pd.concat([report, dup_lines], ignore_index=True)
    return DayFiles(
        main=main,
        late=late_bytes,
        late_landing_offset=int(rng.integers(1, 4)),
        dirty=report,
        n_lines=len(main_idx),
    )


def write_gzip(path: Path, data: bytes, level: int) -> int:
    """Write ``data`` gzip-compressed with a fixed header (mtime 0) and return the file size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    blob = gzip.compress(data, compresslevel=level, mtime=0)
    tmp.write_bytes(blob)
    tmp.replace(path)  # readers never see half a file
    return len(blob)
