"""customer720 machine learning: churn model and product recommendations.

Layout: ``ml.common`` (config, data access, metrics, registry with the one ``promote()``,
the output-table contract, the simulator oracle), ``ml.churn`` and ``ml.recs`` (one small
module per step). Entry points for orchestration are in ``ml.pipeline``:
``train_churn``, ``score_churn``, ``train_recommender``, ``recommend`` (scoring only) and
``newest_cutoff``; the command line is ``python -m ml churn|recs train|score|report``.

Each step returns a small dict summary suitable for an Airflow task's return value. Importing
``ml`` or ``ml.pipeline`` is cheap (no LightGBM / matplotlib), so DAG files can import it at
parse time.
"""

import os

# LightGBM's OpenMP threads spin while they wait (GNU OpenMP's default). When another
# process holds a core - an Airflow worker running two tasks, dbt beside training - the
# spinning threads starve each other: 200 rounds on 300k rows took 26-146 s instead of 8 s
# beside one busy process. Passive waiting sleeps instead. It must be set before
# LightGBM's OpenMP library loads, hence here: every ML module is in this package. A
# user's own OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
