"""Random but seed-determined identifiers (UUID text), built without a Python loop."""

from __future__ import annotations

import numpy as np

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def new_uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` version-4 UUID strings as a fixed-width bytes array (dtype S36)."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    nibbles = np.empty((n, 32), np.uint8)
    nibbles[:, 0::2] = _HEX[raw >> 4]
    nibbles[:, 1::2] = _HEX[raw & 0x0F]
    out = np.full((n, 36), ord("-"), np.uint8)
    out[:, 0:8] = nibbles[:, 0:8]
    out[:, 9:13] = nibbles[:, 8:12]
    out[:, 14:18] = nibbles[:, 12:16]
    out[:, 19:23] = nibbles[:, 16:20]
    out[:, 24:36] = nibbles[:, 20:32]
    return np.ascontiguousarray(out).view("S36").ravel()
