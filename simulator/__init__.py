"""The demo company: a CRM database and web/app event files with known ground truth.

from simulator import SimulationConfig, generate, append, churn_auc
summary = generate(SimulationConfig(customers=500, days=90, out=tmp))
"""

from simulator.api import append, generate
from simulator.config import DIRTY_MODES, SimulationConfig, parse_dirty
from simulator.oracle import churn_auc, oracle_scores

__all__ = [
    "DIRTY_MODES",
    "SimulationConfig",
    "append",
    "churn_auc",
    "generate",
    "oracle_scores",
    "parse_dirty",
]
