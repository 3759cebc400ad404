"""One chain run at a time: the lock ``run`` / ``backfill`` / ``train`` hold, and ``ui`` tests.

The lock is an ``fcntl.flock`` on ``<airflow home>/chain.lock``: the kernel releases it
when its holder exits, however it exits, so a lock file left by a dead process holds
nothing. The holder writes who it is (pid, start time, command, dates) into the file; a
second run that cannot take the lock prints that and exits at once. Only the standard
library is imported here, and the launcher takes the lock before preflight, Airflow or
any stage package: a refused run exits within a second.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path


class ChainBusy(RuntimeError):
    """Another process holds the chain lock; the message names it."""


def lock_path(airflow_home: Path) -> Path:
    return airflow_home / "chain.lock"


def _describe(holder: dict) -> str:
    dates = holder.get("dates") or []
    what = f"{holder.get('command', 'a run')} for {', '.join(dates) or 'an unknown date'}"
    return f"pid {holder.get('pid', '?')}, started {holder.get('started', '?')}: {what}"


def _open(airflow_home: Path):
    """The lock file, opened without truncating (it names the current holder)."""
    airflow_home.mkdir(parents=True, exist_ok=True)
    return os.fdopen(os.open(lock_path(airflow_home), os.O_RDWR | os.O_CREAT, 0o644), "r+")


@contextlib.contextmanager
def hold(
    airflow_home: Path, command: str, dates: list[str]
) -> Iterator[Callable[[list[str]], None]]:
    """Hold the chain lock exclusively while the block runs; raise ``ChainBusy`` (naming
    the holder) if another process holds it. Never waits. Yields a function that records
    the dates once known (a run without ``--date`` learns its date from the sources)."""
    with _open(airflow_home) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(handle.read() or "{}")
            except ValueError:  # the holder is between truncating and writing
                holder = {}
            raise ChainBusy(
                f"another pipeline run holds {lock_path(airflow_home)} ({_describe(holder)}); "
                "wait for it to finish, or stop it"
            ) from None
        holder = {
            "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "command": command,
            "dates": dates,
        }

        def record(days: list[str]) -> None:
            holder["dates"] = days
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(holder))
            handle.flush()

        record(dates)
        try:
            yield record
        finally:
            # A free lock's file describes nobody (the next holder rewrites it anyway).
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def idle(airflow_home: Path) -> Iterator[bool]:
    """Whether no chain run holds the lock; while True, none can start (``ui`` uses it to
    know that no run in Airflow's DB is still being worked on)."""
    with _open(airflow_home) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
