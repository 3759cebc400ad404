"""One config object per model, built from the project settings (``C720_*`` variables).

Project-wide values (horizon, paths) come from :func:`customer720.settings.get_settings`.
ML knobs that users set are ``C720_ML_*`` / ``C720_REC_*`` variables, declared and read in
``customer720/settings.py`` (named in each field's comment); the rest have defaults here
and can be changed with ``dataclasses.replace(cfg, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from customer720.settings import CHURN_LABELS, Settings, get_settings

LABELS = CHURN_LABELS


@dataclass(frozen=True)
class ChurnConfig:
    horizon_days: int = 90  # C720_CHURN_HORIZON_DAYS: churn = no order in (cutoff, cutoff + H]
    # C720_CHURN_LABEL: "no_purchase" (default) or "no_purchase_no_engagement": churn also
    # needs no web session and no email open/click in the window (marts.fct_touchpoints)
    label: str = "no_purchase"
    inactivity_days: int = 365  # C720_ML_INACTIVITY_DAYS: lapsed longer than this = not eligible
    n_holdout_cutoffs: int = 1  # latest labelled cutoff(s) kept for the final comparison
    n_calibration_cutoffs: int = 1  # next cutoff(s): calibration of probabilities
    # next cutoff(s) back: early stopping, on a fifth of the customers over these and the train
    # cutoffs (ml.churn.dataset._early_stopping_split); the others train on both
    n_valid_cutoffs: int = 1
    seed: int = 42
    num_threads: int = 2  # C720_ML_NUM_THREADS
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_data_in_leaf: int = 20
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0
    num_boost_round: int = 1000
    early_stopping_rounds: int = 50
    # "sigmoid" (Platt, default: smooth, never exactly 0 or 1 — better log loss on the
    # synthetic holdout) or "isotonic" (C720_ML_CALIBRATION)
    calibration: str = "sigmoid"
    champion_margin: float = 0.005  # C720_ML_CHAMPION_MARGIN: ROC-AUC gain needed to replace
    max_ece: float = 0.10  # C720_ML_MAX_ECE: sanity gate on expected calibration error
    risk_bands: tuple[float, float] = (0.3, 0.6)  # C720_ML_RISK_BANDS="0.3,0.6": low/medium/high
    n_reasons: int = 3
    # reasons from exact TreeSHAP (pred_contrib, ~0.7 ms a row) by default: they are what a
    # sales rep reads, so they follow the consistent attribution; C720_ML_EXACT_REASONS=0
    # switches to path contributions (~10x faster); see ml.churn.model.contributions
    exact_reasons: bool = True
    # C720_CHURN_TRAIN_CUSTOMERS: the training frame (every split) holds at most this many
    # customers, a seeded random sample with all their cutoffs (0: all). Its memory grows
    # with customers x cutoffs (~2 KB a row at M); scoring still covers everyone
    train_customers: int = 100_000
    model_dir: Path = field(default_factory=lambda: get_settings().model_dir / "churn")
    reports_dir: Path = field(default_factory=lambda: get_settings().reports_dir / "churn")

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ChurnConfig:
        s = settings or get_settings()
        return cls(
            horizon_days=s.churn_horizon_days,
            label=s.churn_label,
            inactivity_days=s.ml_inactivity_days,
            num_threads=s.ml_num_threads,
            champion_margin=s.churn_champion_margin,
            max_ece=s.churn_max_ece,
            calibration=s.churn_calibration,
            risk_bands=s.churn_risk_bands,
            exact_reasons=s.churn_exact_reasons,
            train_customers=s.churn_train_customers,
            model_dir=s.model_dir / "churn",
            reports_dir=s.reports_dir / "churn",
        )


@dataclass(frozen=True)
class ClvConfig:
    horizon_days: int = (
        365  # C720_CLV_HORIZON_DAYS: CLV = expected net revenue in (as_of, as_of + N]
    )
    # C720_CLV_LABEL_DAYS: the label window the model learns (None: derived from the history,
    # ml.clv.labels.label_window); a shorter window than the horizon is carried to it by BG/NBD
    label_days: int | None = None
    inactivity_days: int = 365  # C720_ML_INACTIVITY_DAYS: who gets a CLV (as for churn)
    holdout_share: float = 0.2  # customers held out at the newest labelled cutoff
    valid_share: float = 0.2  # of the other customers: early stopping
    seed: int = 42
    num_threads: int = 2  # C720_ML_NUM_THREADS
    # 0.1 and 20 rounds of patience: half the trees of 0.05 / 50 for the same figures
    # (bench/clv_truth.py: simulator Spearman 0.695 vs 0.690, CDNOW 0.447 vs 0.447)
    learning_rate: float = 0.1
    num_leaves: int = 15
    min_data_in_leaf: int = 40
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0
    tweedie_variance_power: float = 1.3  # between Poisson (1) and Gamma (2): many zeros, long tail
    num_boost_round: int = 1000
    early_stopping_rounds: int = 20
    champion_margin: float = 0.005  # holdout Spearman gain a new CLV model needs to replace
    model_dir: Path = field(default_factory=lambda: get_settings().model_dir / "clv")
    reports_dir: Path = field(default_factory=lambda: get_settings().reports_dir / "clv")

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ClvConfig:
        s = settings or get_settings()
        return cls(
            horizon_days=s.clv_horizon_days,
            label_days=s.clv_label_days,
            inactivity_days=s.ml_inactivity_days,
            num_threads=s.ml_num_threads,
            model_dir=s.model_dir / "clv",
            reports_dir=s.reports_dir / "clv",
        )


@dataclass(frozen=True)
class RecConfig:
    k: int = 10  # recommendations per customer (and K of MAP/Recall/NDCG@K)
    horizon_days: int = 7  # a "week": label window of every training / validation / eval cutoff
    train_weeks: int = 4  # weekly training cutoffs before the validation week
    inactivity_days: int = 365  # C720_ML_INACTIVITY_DAYS: who gets recommendations
    popular_window_days: int = 90  # "popular" = most distinct buyers in this many days
    recent_view_days: int = 30  # "you viewed it" / "in your cart" look back this far
    web_window_days: int = 90  # sessions and view→buy journeys used for item-item similarity
    view_to_buy_days: int = 7  # a view counts for view→buy if the order follows within this
    cooc_days: int = 365  # orders used for bought-together similarity
    repurchase_half_life_days: float = 90.0  # decay of past purchases (repurchase score)
    seed_items: int = 10  # most recent distinct products per customer used as seeds
    neighbours: int = 20  # similar products kept per product
    top_categories: int = 4  # category_popular: the customer's top categories ...
    per_category: int = 20  # ... and this many best sellers of each
    max_candidates: int = 200  # per customer, after the union of the sources
    source_caps: dict[str, int] = field(
        default_factory=lambda: {
            "repurchase": 30,
            "co_purchase": 30,
            "co_view": 30,
            "view_buy": 20,
            "cart_buy": 20,
            "recently_viewed": 20,
            "recently_carted": 20,
            "category_popular": 80,
            "segment_popular": 10,
            "trending": 10,
            "popular": 20,
        }
    )
    # Business rules: at most this many products of one category in a customer's top k
    # (C720_REC_MAX_PER_CATEGORY; >= k switches it off) ...
    max_per_category: int = 5
    # ... and, optionally (C720_REC_EXCLUDE_JUST_BOUGHT=1), no product the customer bought in
    # the last just_bought_days whose repeat rate (share of buyers who bought it again) is
    # below repeatable_min_rate.
    exclude_just_bought: bool = False
    just_bought_days: int = 30
    repeatable_min_rate: float = 0.05
    # Fallback order when no ranker can be trained (too little data): a transparent blend,
    # score = sum(weight * per-customer-normalised source score).
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "recently_carted": 1.0,
            "repurchase": 1.0,
            "co_purchase": 0.8,
            "cart_buy": 0.6,
            "view_buy": 0.6,
            "recently_viewed": 0.6,
            "co_view": 0.4,
            "category_popular": 0.5,
            "segment_popular": 0.3,
            "trending": 0.2,
            "popular": 0.2,
        }
    )
    champion_margin: float = 0.002  # C720_REC_CHAMPION_MARGIN: MAP@k gain needed to replace
    als: bool = True  # C720_REC_ALS=0 skips the implicit-ALS baseline
    # C720_REC_BATCH_CUSTOMERS: candidates and features are built for this many customers at
    # a time (training weeks and daily scoring); memory grows with it, results do not change
    batch_customers: int = 5000
    # C720_REC_TRAIN_CUSTOMERS: at most this many buyers per training week, a seeded random
    # sample (0 = all); the validation and evaluation weeks are never sampled
    train_customers: int = 8000
    # C720_REC_REFRESH_DAYS: daily ranking re-ranks customers whose inputs changed plus a
    # rotation slice, so no published list is older than this (1 = everyone, every day)
    refresh_days: int = 14
    seed: int = 42
    num_threads: int = 2  # C720_ML_NUM_THREADS
    model_dir: Path = field(default_factory=lambda: get_settings().model_dir / "recommend")
    reports_dir: Path = field(
        default_factory=lambda: get_settings().reports_dir / "recommendations"
    )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> RecConfig:
        s = settings or get_settings()
        return cls(
            inactivity_days=s.ml_inactivity_days,
            max_per_category=s.rec_max_per_category,
            exclude_just_bought=s.rec_exclude_just_bought,
            champion_margin=s.rec_champion_margin,
            als=s.rec_als,
            batch_customers=s.rec_batch_customers,
            train_customers=s.rec_train_customers,
            refresh_days=s.rec_refresh_days,
            num_threads=s.ml_num_threads,
            model_dir=s.model_dir / "recommend",
            reports_dir=s.reports_dir / "recommendations",
        )
