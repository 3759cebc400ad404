"""How much of the churn model's gap to the simulator's oracle can observable data close?

The oracle (``simulator.oracle.oracle_scores``) knows two things no pipeline sees: who has
**already churned** before the cutoff (churn is a silent event: the person just stops), and
each person's **true** churn hazard and order rate. This script scores the champion's
holdout rows (``<reports>/churn/<champion>/holdout_predictions.csv``) with an
*observable-information oracle*: it still knows every true rate (hazard, order rate, and the
person's rate of observable activity — orders, web sessions, email opens/clicks, tickets),
but **not** whether the person already churned; like the pipeline it only sees how long the
person has been silent at the cutoff (S days) and infers

    P(dead | silent S) = a / (a + b),  a = h/(h+r)·(1 − e^{−(h+r)S}),  b = e^{−(h+r)S}

(h = daily hazard, r = daily rate of observable activity while alive), then
P(churn label) = P(dead) + (1 − P(dead))·P(no order in the horizon | alive, h, order rate).
Its ROC-AUC bounds what any model of the observable data could reach *even with every
latent rate known*; the difference to the oracle is the price of invisible churn.

    C720_LOCAL_DIR=/tmp/churn-10k/local C720_SOURCES_DIR=/tmp/churn-10k/sources \\
        .venv/bin/python bench/churn_oracle_gap.py

Simulated companies only (needs ``<sources>/truth``). Reads the warehouse read-only.
"""

import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score as auc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from customer720.settings import get_settings  # noqa: E402
from ml.common import registry  # noqa: E402
from ml.common.config import ChurnConfig  # noqa: E402
from ml.common.oracle import person_of_customer  # noqa: E402
from simulator.oracle import oracle_scores  # noqa: E402

settings, cfg = get_settings(), ChurnConfig.from_settings()
src = settings.truth_dir.parent
version = registry.champion_version(cfg.model_dir)
h = pd.read_csv(cfg.reports_dir / version / "holdout_predictions.csv")
cut = pd.Timestamp(h["cutoff_date"].iloc[0])
horizon = cfg.horizon_days
con = duckdb.connect(settings.warehouse, read_only=True)
act = con.execute("""
with ck as (select contact_id, customer_key from intermediate.int_identity_nodes_resolved where node_type='contact'),
links as (select n.anonymous_id, n.customer_key, min(g.first_seen_at) linked_at from intermediate.int_identity_nodes_resolved n
  join intermediate.int_identity_edges_guarded g on n.node_id = g.other_node_id and g.is_used where n.node_type='anon' group by 1,2),
act as (
  select customer_key, ordered_at as ts, cast(null as timestamp) as linked_at from marts.fct_orders where not is_cancelled and customer_key is not null
  union all select l.customer_key, s.started_at, l.linked_at from marts.fct_sessions s join links l using (anonymous_id)
  union all select ck.customer_key, e.occurred_at, null from staging.stg_crm__email_events e join ck using (contact_id) where e.event_type in ('open','click')
  union all select ck.customer_key, t.created_at, null from intermediate.int_tickets_scored t join ck using (contact_id)
)
select customer_key, ts as "at", linked_at from act
""").df()
con.close()
m = person_of_customer(src / "truth")
persons = pd.read_parquet(src / "truth/persons.parquet")
end = act["at"].max().normalize()
# activity known at the cutoff → silence S
known = act[(act["at"] <= cut) & (act["linked_at"].isna() | (act["linked_at"] <= cut))]
last = known.groupby("customer_key")["at"].max()
h["S"] = (cut - h["customer_key"].map(last)).dt.total_seconds() / 86400
# the person's observable activity rate while alive (whole window, truth-aware denominator)
cnt = act.groupby("customer_key").size()
first = act.groupby("customer_key")["at"].min()
h = h.merge(m[["customer_key", "person_id"]], on="customer_key", how="left").merge(
    persons[["person_id", "churn_date"]], on="person_id", how="left"
)
stop = pd.to_datetime(h["churn_date"]).fillna(end).clip(upper=end)
alive_days = ((stop - h["customer_key"].map(first)).dt.total_seconds() / 86400).clip(lower=1)
h["r"] = h["customer_key"].map(cnt) / alive_days
o = oracle_scores(src, cut.date(), horizon)
h = h.merge(o[["person_id", "oracle"]], on="person_id", how="left")
snaps = pd.read_parquet(src / "truth/hazard_snapshots.parquet")
snaps["date"] = pd.to_datetime(snaps["date"])
lat = snaps[snaps["date"] == snaps.loc[snaps["date"] <= cut, "date"].max()].set_index("person_id")
hz = lat["hazard"].reindex(h.person_id).to_numpy(float)
lam = lat["order_rate"].reindex(h.person_id).to_numpy(float) * 0.97
tot = hz + lam
p_order = np.where(tot > 0, lam / np.maximum(tot, 1e-12) * (1 - np.exp(-tot * horizon)), 0)
S, r = h["S"].fillna(0).to_numpy(), h["r"].fillna(0).to_numpy()
A = hz / (hz + r) * (1 - np.exp(-(hz + r) * S))
B = np.exp(-(hz + r) * S)
pdead = A / (A + B)
h["observable_oracle"] = pdead + (1 - pdead) * (1 - p_order)
y = h["churned"].to_numpy()
already = (pd.to_datetime(h["churn_date"]) <= cut).to_numpy()
print(
    f"model {version}, holdout cutoff {cut.date()}, {len(h)} rows, already churned {already.mean():.3f}"
)
a_o, a_obs, a_m = auc(y, h.oracle), auc(y, h.observable_oracle), auc(y, h.model)
print(f"oracle {a_o:.4f} | observable-information oracle {a_obs:.4f} | model {a_m:.4f}")
print(f"gap {a_o - a_m:.4f} = invisible churn {a_o - a_obs:.4f} + the rest {a_obs - a_m:.4f}")
told = np.where(already, 2.0, h["model"])
print(f"the model told who already churned: {auc(y, told):.4f}")
print(
    f"P(dead | silence) mean: already-churned {pdead[already].mean():.3f}, alive {pdead[~already].mean():.3f}"
)
print(
    f"already-churned rows with P(dead|silence) < 0.5 (look alive to anyone): {(pdead[already] < 0.5).mean():.3f}"
)
