"""The command line: help for new users, a full run, actionable errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ml.__main__ import main


def test_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "ml", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("train", "score", "recommend", "report"):
        assert command in out


def test_as_of_must_be_a_date(capsys):
    with pytest.raises(SystemExit):
        main(["churn", "score", "--as-of", "yesterday"])
    assert "not a date" in capsys.readouterr().err


def test_every_train_and_score_names_a_function_that_takes_the_date():
    """The parser names what each action runs as text (imported only then): a renamed
    function must fail here, not on the first scheduled run."""
    import importlib
    import inspect

    from ml.__main__ import build_parser

    for model in ("churn", "clv", "recs"):
        for action in ("train", "score"):
            args = build_parser().parse_args([model, action, "--as-of", "2026-06-30"])
            module, name = args.step.split(":")
            step = getattr(importlib.import_module(module), name)
            assert "as_of" in inspect.signature(step).parameters, (model, action)


def test_all_then_report(synthetic_wh, capsys):
    as_of = synthetic_wh["as_of"].isoformat()
    result = {}
    for model, action, key in (
        ("churn", "train", "train"),
        ("churn", "score", "score"),
        ("recs", "train", "recs_train"),
        ("recs", "score", "recommend"),
    ):
        assert main([model, action, "--as-of", as_of]) == 0
        result[key] = json.loads(capsys.readouterr().out)
    assert result["score"]["model_version"] == result["train"]["version"]
    assert result["recommend"]["rows"] > 0
    assert main(["churn", "report"]) == 0
    assert json.loads(capsys.readouterr().out)["report"].endswith("report.html")
    assert main(["churn", "report", "--as-of", synthetic_wh["as_of"].isoformat()]) == 0
    assert result["train"]["version"] in json.loads(capsys.readouterr().out)["report"]
    assert main(["churn", "report", "--as-of", "2020-01-01"]) == 2


def test_missing_features_is_reported_not_a_traceback(local_dir, capsys):
    assert main(["churn", "train", "--as-of", "2026-06-30"]) == 2
    assert "ml.customer_features is missing" in capsys.readouterr().err


def test_pipeline_functions_for_airflow(synthetic_wh):
    """The functions the DAG calls accept an ISO string and return JSON-serialisable dicts."""
    from ml import pipeline

    as_of = synthetic_wh["as_of"].isoformat()
    steps = (
        pipeline.train_churn,
        pipeline.train_recommender,
        pipeline.score_churn,
        pipeline.recommend,
    )
    for step in steps:
        summary = step(as_of)
        assert isinstance(summary, dict)
        json.dumps(summary)  # XCom-safe
