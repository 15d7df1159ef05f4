"""A seeded generator of subscription-package prices with controllable drift (the regression demo).

Each row is a custom package a customer was quoted; the target is its monthly price. Knobs
(all default to "no drift"):

- ``covariate_shift`` (standard deviations): larger packages (``seats``, ``storage_gb``) move up
  by that many of their standard deviations; the price rule is unchanged (pure data drift).
- ``concept_shift`` (0..1): blends the price rule toward a new one (storage gets dearer, the
  enterprise discount goes), with the inputs unchanged. 1.0 is the full new rule.
- ``noise`` scales the price noise (its standard deviation in currency units at 1.0 is `NOISE_SD`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TIERS = ["basic", "pro", "enterprise"]
REGIONS = ["eu", "us", "apac"]
SEGMENTS = ["smb", "mid", "large"]
NUMERIC_FEATURES = ["seats", "storage_gb", "support_hours", "contract_months"]
CATEGORICAL_FEATURES = ["tier", "region", "segment"]
TARGET = "monthly_price"
ID_COLUMN = "quote_id"
NOISE_SD = 8.0
_TIER_PROBS = [0.5, 0.35, 0.15]
_TIER_BASE = {"basic": 20.0, "pro": 60.0, "enterprise": 150.0}
_REGION_FACTOR = {"eu": 1.0, "us": 1.1, "apac": 0.9}


def _price(frame: pd.DataFrame, concept: float) -> np.ndarray:
    """The price rule, blended between the original (0) and the new one (1)."""
    base = frame["tier"].map(_TIER_BASE).to_numpy(dtype=np.float64)
    region = frame["region"].map(_REGION_FACTOR).to_numpy(dtype=np.float64)
    seats = frame["seats"].to_numpy(dtype=np.float64)
    storage = frame["storage_gb"].to_numpy(dtype=np.float64)
    support = np.nan_to_num(frame["support_hours"].to_numpy(dtype=np.float64))
    months = frame["contract_months"].to_numpy(dtype=np.float64)
    enterprise = (frame["tier"] == "enterprise").to_numpy()
    old = base + 4.0 * seats + 0.05 * storage + 6.0 * support - 0.8 * months - 25.0 * enterprise
    new = base + 4.0 * seats + 0.25 * storage + 6.0 * support - 0.8 * months
    return region * ((1.0 - concept) * old + concept * new)


def generate_prices(
    n: int,
    seed: int = 0,
    *,
    covariate_shift: float = 0.0,
    concept_shift: float = 0.0,
    noise: float = 1.0,
) -> pd.DataFrame:
    """`n` quoted packages and their monthly prices; the same seed and knobs give the same rows."""
    if not 0.0 <= concept_shift <= 1.0:
        raise ValueError("concept_shift must be within 0..1")
    if noise < 0:
        raise ValueError("noise must not be negative")
    rng = np.random.default_rng(seed)
    seats = rng.poisson(12, n).astype(np.float64) + 1.0
    storage = rng.gamma(2.0, 100.0, n)
    seats += covariate_shift * 3.5
    storage += covariate_shift * 140.0
    support = rng.integers(0, 9, n).astype(np.float64)
    # Support hours are not always recorded: missing values the pipeline must impute.
    support[rng.random(n) < 0.05] = np.nan
    frame = pd.DataFrame(
        {
            ID_COLUMN: [f"q{seed}-{i}" for i in range(n)],
            "seats": np.round(seats),
            "storage_gb": np.round(storage, 1),
            "support_hours": support,
            "contract_months": rng.choice([1.0, 12.0, 24.0, 36.0], n, p=[0.3, 0.4, 0.2, 0.1]),
            "tier": rng.choice(TIERS, n, p=_TIER_PROBS),
            "region": rng.choice(REGIONS, n, p=[0.4, 0.4, 0.2]),
            "segment": rng.choice(SEGMENTS, n, p=[0.5, 0.3, 0.2]),
        }
    )
    price = _price(frame, concept_shift) + rng.normal(0.0, NOISE_SD * noise, n)
    frame[TARGET] = np.round(np.maximum(price, 1.0), 2)
    return frame
