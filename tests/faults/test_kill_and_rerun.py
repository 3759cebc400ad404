"""Issue #19, item 5: a kill at each stage, then a re-run, leaves every user-facing table as
an uninterrupted run left it.

One uninterrupted run of the small company (``faultkit``) for D is the reference; it keeps
its state before each stage. For each stage of ``killpoints.STAGES`` (ingest, dbt,
training, publish, CRM writeback) the state before that stage is put back, the stage runs
in a child process that is SIGKILLed mid-work (``killpoints``: part of its output written),
and a re-run from that stage to the end must leave every table of the warehouse's marts and
ml schemas, the published snapshot's marts and the CRM writeback table exactly as the
reference left them (run-time stamps apart: load ids, load and scoring times).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import LAST, differences, restore_state, run_date, save_state, simulate
from killpoints import STAGES


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kill_and_rerun")
    local = root / "local"
    simulate(local, root / "simulate.log")
    run_date(local, LAST, root / "reference.log", "--save-before", str(root / "before"))
    return {"root": root, "local": local, "end": save_state(local, root / "reference_end")}


@pytest.mark.parametrize("stage", STAGES)
def test_kill_then_rerun_equals_an_uninterrupted_run(reference: dict, stage: str) -> None:
    root, local = reference["root"], reference["local"]
    restore_state(root / "before" / stage, local)
    out = run_date(local, LAST, root / f"{stage}_killed.log", "--from", stage, "--kill-in", stage,
                   killed=True)  # fmt: skip
    assert f"killpoint: SIGKILL in {stage}" in out
    assert differences(reference["end"], local), "the kill left nothing to repair"
    run_date(local, LAST, root / f"{stage}_rerun.log", "--from", stage)
    assert differences(reference["end"], local) == {}
