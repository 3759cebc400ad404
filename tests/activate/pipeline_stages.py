"""The daily pipeline's writing stages in one process, without Airflow and the gates.

For the activate tests: the same stage functions the DAG calls (ingest, dbt, the ML
steps, publish, CRM sync), in a child process of its own so the test process never
holds the warehouse file. dbt builds without its tests (they only read).

    python tests/activate/pipeline_stages.py --date 2024-05-29 [--no-ml]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

NO_TESTS = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--date", type=date.fromisoformat, required=True)
    parser.add_argument("--no-ml", action="store_true", help="keep the existing ML outputs")
    args = parser.parse_args(argv)

    from activate.publish import publish
    from activate.writeback import sync_scores
    from customer720.dbt import run_dbt
    from ingest import extract_crm, load_events

    out: dict = {"crm": extract_crm().as_dict(), "events": load_events().as_dict()}
    if args.no_ml:  # the ML outputs exist: one build of everything
        run_dbt("build", as_of=args.date, args=NO_TESTS)
    else:
        from ml.pipeline import recommend, score_churn, train_churn

        run_dbt("build", as_of=args.date, exclude="tag:needs_scores", args=NO_TESTS)
        train_churn(args.date)
        score_churn(args.date)
        recommend(args.date)
        run_dbt("build", as_of=args.date, select="tag:needs_scores", args=NO_TESTS)
    out["publish"] = publish()
    out["sync"] = {k: v for k, v in sync_scores(args.date).__dict__.items() if k != "changes"}
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
