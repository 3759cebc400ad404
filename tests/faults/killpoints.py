"""Where a stage is killed mid-work (``pipeline_stages.py --kill-in STAGE``): a SIGKILL of
the stage's own process at a point where it has written part of its output, as a power cut
or the OOM killer would. Each hook wraps the real code: everything before the point runs
for real, nothing after it does.

| stage | killed when |
|---|---|
| ingest_events | the first of several event batches is committed (batches made small) |
| marts | dbt starts fct_product_interactions: staging and most incremental facts written |
| train_churn | the model's folder is registered (metadata.json), before the rest |
| publish | published.duckdb.tmp is written, before it replaces the snapshot |
| crm_writeback | inside the third batch's CRM transaction (two batches committed) |
"""

from __future__ import annotations

import os
import signal
from typing import Any

STAGES = ("ingest_events", "marts", "train_churn", "publish", "crm_writeback")


def die(where: str) -> None:
    print(f"killpoint: SIGKILL in {where}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def install(stage: str) -> None:
    """Arm the kill point of ``stage`` in this process."""
    {
        "ingest_events": _ingest_events,
        "marts": _marts,
        "train_churn": _train_churn,
        "publish": _publish,
        "crm_writeback": _crm_writeback,
    }[stage]()


def _ingest_events() -> None:
    from ingest import events

    events.BATCH_BYTES = 64 << 10  # several batches even for a small company
    load = events._load_or_reject

    def load_then_die(*args: Any, **kwargs: Any) -> Any:
        load(*args, **kwargs)
        die("ingest_events after the first batch")

    events._load_or_reject = load_then_die


def _marts() -> None:
    import dbt.cli.main

    runner = dbt.cli.main.dbtRunner

    def on_event(event: Any) -> None:
        if event.info.name == "NodeStart" and (
            event.data.node_info.node_name == "fct_product_interactions"
        ):
            die("marts: dbt at fct_product_interactions")

    class KilledRunner(runner):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, callbacks: list | None = None, **kwargs: Any) -> None:
            super().__init__(*args, callbacks=[*(callbacks or []), on_event], **kwargs)

    dbt.cli.main.dbtRunner = KilledRunner


def _train_churn() -> None:
    from ml.common import registry

    write_json = registry.write_json

    def write_json_then_die(path: Any, payload: dict) -> None:
        write_json(path, payload)
        if path.name == "metadata.json":  # the model folder is complete: registered
            die("train_churn after registering the model")

    registry.write_json = write_json_then_die


def _publish() -> None:
    from activate import publish

    fsync = publish._fsync

    def fsync_then_die(path: Any) -> None:
        fsync(path)
        if str(path).endswith(".tmp"):
            die("publish with published.duckdb.tmp written")

    publish._fsync = fsync_then_die


def _crm_writeback() -> None:
    import sqlalchemy as sa

    from activate import writeback

    writeback.BATCH_ROWS = 20
    writes = []

    @sa.event.listens_for(sa.engine.Engine, "after_cursor_execute")
    def third_write_dies(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if (
            statement.lstrip()
            .lower()
            .startswith(("insert into c720_customer_scores", "update c720_customer_scores"))
        ):
            writes.append(statement)
            if len(writes) == 3:
                die("crm_writeback inside the third batch's transaction")
