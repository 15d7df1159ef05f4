"""A seeded generator of customer-churn data with controllable drift.

Knobs (all default to "no drift"):

- ``covariate_shift`` (standard deviations): moves the inputs of ``shift_features``.
  A numeric feature's mean moves by that many of its standard deviations; a
  categorical feature's frequencies move toward its rarest categories by the share
  ``min(1, covariate_shift / 2)``. The label's dependence on the features is unchanged,
  so the model stays right about each row (pure data drift).
- ``concept_shift`` (0..1): blends the label model toward a different one (price
  sensitivity and long contracts stop protecting customers; poor network regions
  churn more), with the inputs unchanged. 1.0 is the full new concept.
- ``new_category_rate`` (0..1): share of rows whose ``payment_method`` and ``region``
  take values never seen in training (``crypto``, ``offshore``).
- ``missing_rate`` scales the missing values that the data always has.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENT_METHODS = ["electronic-check", "mailed-check", "bank-transfer", "credit-card"]
INTERNET = ["dsl", "fiber", "none"]
REGIONS = ["north", "south", "east", "west"]
AGE_BANDS = ["18-29", "30-44", "45-59", "60+"]
YES_NO = ["yes", "no"]
DEVICES = ["android", "ios", "web"]

NUMERIC_FEATURES = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "num_products",
    "data_usage_gb",
    "satisfaction_score",
    "days_since_last_login",
]
CATEGORICAL_FEATURES = [
    "contract",
    "payment_method",
    "internet_service",
    "region",
    "age_band",
    "paperless_billing",
    "device",
]
TARGET = "churned"
ID_COLUMN = "customer_id"
DEFAULT_SHIFT_FEATURES = ("monthly_charges", "support_calls")

_BASE_PROBS: dict[str, list[float]] = {
    "contract": [0.55, 0.25, 0.20],
    "payment_method": [0.35, 0.20, 0.22, 0.23],
    "internet_service": [0.35, 0.45, 0.20],
    "region": [0.30, 0.25, 0.25, 0.20],
    "age_band": [0.22, 0.33, 0.27, 0.18],
    "paperless_billing": [0.6, 0.4],
    "device": [0.45, 0.35, 0.20],
}
_LEVELS: dict[str, list[str]] = {
    "contract": CONTRACTS,
    "payment_method": PAYMENT_METHODS,
    "internet_service": INTERNET,
    "region": REGIONS,
    "age_band": AGE_BANDS,
    "paperless_billing": YES_NO,
    "device": DEVICES,
}
# Standard deviations of the numeric inputs before any shift, so a shift of k moves a
# mean by k of them.
_NUMERIC_STD = {
    "tenure_months": 20.0,
    "monthly_charges": 25.0,
    "support_calls": 1.5,
    "num_products": 1.1,
    "data_usage_gb": 12.0,
    "satisfaction_score": 2.0,
    "days_since_last_login": 12.0,
}


def _categorical_probs(name: str, shift: float) -> np.ndarray:
    base = np.asarray(_BASE_PROBS[name], dtype=float)
    if shift <= 0:
        return base
    # Move mass toward the mirrored ranking: the rarest category takes the largest share.
    order = np.argsort(base)
    target = np.empty_like(base)
    target[order] = base[order[::-1]]
    share = min(1.0, shift / 2.0)
    p = (1 - share) * base + share * target
    return p / p.sum()


def generate_churn(
    n: int,
    seed: int = 0,
    *,
    covariate_shift: float = 0.0,
    concept_shift: float = 0.0,
    new_category_rate: float = 0.0,
    shift_features: Sequence[str] = DEFAULT_SHIFT_FEATURES,
    missing_rate: float = 1.0,
    id_prefix: str = "c",
) -> pd.DataFrame:
    """Return ``n`` customers with features, ``customer_id`` and the label ``churned``."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if not 0.0 <= concept_shift <= 1.0:
        raise ValueError("concept_shift must be within [0, 1]")
    if not 0.0 <= new_category_rate <= 1.0:
        raise ValueError("new_category_rate must be within [0, 1]")
    unknown = set(shift_features) - set(NUMERIC_FEATURES) - set(CATEGORICAL_FEATURES)
    if unknown:
        raise ValueError(f"unknown shift_features: {sorted(unknown)}")

    rng = np.random.default_rng(seed)
    shifted = set(shift_features) if covariate_shift else set()

    def mean_shift(name: str) -> float:
        return covariate_shift * _NUMERIC_STD[name] if name in shifted else 0.0

    cats: dict[str, np.ndarray] = {}
    for name, levels in _LEVELS.items():
        probs = _categorical_probs(name, covariate_shift if name in shifted else 0.0)
        cats[name] = rng.choice(np.asarray(levels, dtype=object), size=n, p=probs)

    long_contract = (cats["contract"] != "month-to-month").astype(float)
    tenure = rng.gamma(1.6, 14.0, n) + 18.0 * long_contract + mean_shift("tenure_months")
    tenure = np.clip(np.round(tenure), 0, 72)
    fiber = (cats["internet_service"] == "fiber").astype(float)
    no_net = (cats["internet_service"] == "none").astype(float)
    monthly = rng.normal(65 + 25 * fiber - 35 * no_net, 18, n) + mean_shift("monthly_charges")
    monthly = np.clip(monthly, 18.0, 150.0).round(2)
    total = np.where(tenure > 0, tenure * monthly * rng.normal(1.0, 0.05, n), np.nan).round(2)
    support = rng.poisson(np.clip(1.2 + 0.6 * fiber + mean_shift("support_calls"), 0.05, None))
    products = np.clip(rng.poisson(1.6, n) + 1 + np.round(mean_shift("num_products")), 1, 8)
    usage = np.clip(rng.lognormal(2.5, 0.7, n) + mean_shift("data_usage_gb"), 0, None).round(2)
    satisfaction = np.clip(
        np.round(rng.normal(7.0 - 0.4 * support, 1.8, n) + mean_shift("satisfaction_score")), 1, 10
    )
    last_login = np.clip(rng.exponential(9.0, n) + mean_shift("days_since_last_login"), 0, 365).round(1)

    z_tenure = (tenure - 30.0) / 20.0
    z_monthly = (monthly - 70.0) / 25.0
    z_support = (support - 1.5) / 1.4
    z_sat = (satisfaction - 6.5) / 2.0
    z_login = (last_login - 9.0) / 9.0
    month_to_month = (cats["contract"] == "month-to-month").astype(float)
    two_year = (cats["contract"] == "two-year").astype(float)
    e_check = (cats["payment_method"] == "electronic-check").astype(float)
    south = (cats["region"] == "south").astype(float)
    east = (cats["region"] == "east").astype(float)
    young = (cats["age_band"] == "18-29").astype(float)

    logit_old = (
        -1.9
        - 0.9 * z_tenure
        + 0.7 * z_monthly
        + 0.6 * z_support
        - 0.5 * z_sat
        + 0.4 * z_login
        + 1.1 * month_to_month
        - 0.8 * two_year
        + 0.5 * e_check
        + 0.2 * young
        + 0.3 * fiber
    )
    logit_new = (
        -1.9
        + 0.6 * z_tenure
        - 0.6 * z_monthly
        + 0.6 * z_support
        - 0.5 * z_sat
        + 0.4 * z_login
        - 0.2 * month_to_month
        + 0.5 * two_year
        - 0.4 * e_check
        + 1.4 * south
        + 0.9 * east
        + 0.3 * fiber
    )
    logit = (1 - concept_shift) * logit_old + concept_shift * logit_new
    churned = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)

    frame = pd.DataFrame(
        {
            ID_COLUMN: [f"{id_prefix}{seed}-{i:07d}" for i in range(n)],
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support.astype(float),
            "num_products": products.astype(float),
            "data_usage_gb": usage,
            "satisfaction_score": satisfaction,
            "days_since_last_login": last_login,
            **{name: cats[name] for name in CATEGORICAL_FEATURES},
            TARGET: churned,
        }
    )
    # Missing values the way real CRM exports have them.
    for column, rate in (("data_usage_gb", 0.05), ("satisfaction_score", 0.10), ("device", 0.04)):
        mask = rng.random(n) < min(1.0, rate * missing_rate)
        frame.loc[mask, column] = np.nan if column in NUMERIC_FEATURES else None
    if new_category_rate > 0:
        for column, unseen in (("payment_method", "crypto"), ("region", "offshore")):
            mask = rng.random(n) < new_category_rate
            frame.loc[mask, column] = unseen
    return frame
