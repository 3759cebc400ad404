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
# spinning threads starve each other. 200 rounds on 300k rows x 40, 2 threads, on 2 cores:
# beside one busy process 14-15 s spinning, 8-9 s passive (26-146 s vs 8 s beside a
# simulation); on an idle machine 4.5-4.8 s vs 5.4-5.8 s. Airflow runs up to 4 tasks here,
# so we take the 20 % on an idle machine for the robustness. It must be set before
# LightGBM's OpenMP library loads, hence here: every ML module is in this package. A
# user's own OMP_WAIT_POLICY wins (ACTIVE on a machine that only trains).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
