"""Synthetic Telco-churn data with a known churn process (the embedded default data source).

Every row is drawn vectorised with numpy, so a million rows take seconds. The churn label is
drawn from a logistic model of contract, tenure, charges, payment method and services, with the
intercept solved so the expected churn rate hits ``churn_rate`` exactly; each row's true
probability can be written beside it (``TRUTH_COLUMN``) so a trained model can be compared with
the best achievable (oracle) AUC. :class:`Drift` knobs shift the population or the churn process
for monitoring work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from components import schema
from components.config import ConfigError
from components.storage import atomic_path

log = logging.getLogger(__name__)

# P(add-on = "Yes" | has internet), DSL vs fiber customers.
_ADDON_RATES = {
    "OnlineSecurity": (0.45, 0.25),
    "OnlineBackup": (0.42, 0.45),
    "DeviceProtection": (0.40, 0.48),
    "TechSupport": (0.45, 0.25),
    "StreamingTV": (0.35, 0.60),
    "StreamingMovies": (0.35, 0.60),
}
_ADDON_PRICE = {
    "OnlineSecurity": 5.0,
    "OnlineBackup": 5.0,
    "DeviceProtection": 5.0,
    "TechSupport": 5.0,
    "StreamingTV": 10.0,
    "StreamingMovies": 10.0,
}


@dataclass(frozen=True)
class Drift:
    """Knobs that move the generated data away from the reference population.

    ``monthly_charges_scale`` multiplies bills (covariate drift); ``month_to_month_share`` moves
    that share of long-contract customers to month-to-month (covariate drift that also raises
    churn); ``fiber_share_boost`` moves that share of DSL customers to fiber; ``churn_logit_shift``
    adds to every customer's churn log-odds (concept / label drift).
    """

    monthly_charges_scale: float = 1.0
    month_to_month_share: float = 0.0
    fiber_share_boost: float = 0.0
    churn_logit_shift: float = 0.0


NO_DRIFT = Drift()


def _choice(rng: np.random.Generator, options: tuple[str, ...], p: list[float], n: int) -> np.ndarray:
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=n, p=p)]


def _yes_no(rng: np.random.Generator, p_yes: np.ndarray | float, n: int) -> np.ndarray:
    return np.where(rng.random(n) < p_yes, "Yes", "No").astype(object)


def _customer_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Telco-style ids ("0042137-KQZTW"): a unique serial plus random letters."""
    letters = rng.integers(ord("A"), ord("Z") + 1, size=(n, 5), dtype=np.uint8)
    suffix = letters.view("S5").ravel().astype(str)
    serial = np.char.zfill(np.arange(n).astype(str), 7)
    return np.char.add(np.char.add(serial, "-"), suffix).astype(object)


def generate(
    rows: int,
    seed: int = 42,
    churn_rate: float = 0.25,
    drift: Drift = NO_DRIFT,
    with_truth: bool = True,
) -> pd.DataFrame:
    """Draw ``rows`` customers in the Telco layout (label as "Yes"/"No").

    With ``with_truth`` the frame also holds each row's true churn probability in
    ``schema.TRUTH_COLUMN``.
    """
    if rows < 1:
        raise ConfigError(f"rows must be >= 1, got {rows}")
    if not 0.01 <= churn_rate <= 0.99:
        raise ConfigError(f"churn_rate must be within [0.01, 0.99], got {churn_rate}")
    rng = np.random.default_rng(seed)
    n = rows

    senior = (rng.random(n) < 0.16).astype(np.int64)
    partner = _yes_no(rng, 0.48, n)
    dependents = _yes_no(rng, np.where(partner == "Yes", 0.50, 0.12), n)

    contract = _choice(rng, schema.BY_NAME["Contract"].categories, [0.55, 0.21, 0.24], n)
    if drift.month_to_month_share:
        moved = (contract != "Month-to-month") & (rng.random(n) < drift.month_to_month_share)
        contract[moved] = "Month-to-month"
    # Tenure depends on the contract: long contracts belong to long-standing customers.
    mean_tenure = np.select([contract == "Month-to-month", contract == "One year"], [16.0, 38.0], 55.0)
    tenure = np.clip(np.rint(rng.gamma(2.0, mean_tenure / 2.0)), 0, 72).astype(np.int64)

    phone = _yes_no(rng, 0.90, n)
    multiple = np.where(phone == "Yes", _yes_no(rng, 0.47, n), "No phone service").astype(object)

    internet = _choice(rng, schema.BY_NAME["InternetService"].categories, [0.34, 0.44, 0.22], n)
    if drift.fiber_share_boost:
        internet[(internet == "DSL") & (rng.random(n) < drift.fiber_share_boost)] = "Fiber optic"
    has_internet = internet != "No"
    fiber = internet == "Fiber optic"
    addons = {}
    for col, (p_dsl, p_fiber) in _ADDON_RATES.items():
        drawn = _yes_no(rng, np.where(fiber, p_fiber, p_dsl), n)
        addons[col] = np.where(has_internet, drawn, "No internet service").astype(object)

    paperless = _yes_no(rng, np.where(fiber, 0.72, 0.50), n)
    payment = _choice(rng, schema.BY_NAME["PaymentMethod"].categories, [0.34, 0.23, 0.22, 0.21], n)

    monthly = (
        20.0
        + 5.0 * (phone == "Yes")
        + 5.0 * (multiple == "Yes")
        + np.select([internet == "DSL", fiber], [25.0, 48.0], 0.0)
        + sum(price * (addons[c] == "Yes") for c, price in _ADDON_PRICE.items())
        + rng.normal(0.0, 2.5, n)
    )
    monthly = np.round(np.clip(monthly * drift.monthly_charges_scale, 18.0, 400.0), 2)
    # Past bills varied around today's: total ≈ tenure * monthly with noise; zero for new customers.
    total = np.round(tenure * monthly * rng.normal(1.0, 0.05, n).clip(0.8, 1.2), 2)

    logit = (
        np.select([contract == "Month-to-month", contract == "One year"], [1.1, -0.2], -1.4)
        - 1.8 * np.log1p(tenure) / np.log1p(72)
        + 0.55 * fiber
        + 0.45 * (payment == "Electronic check")
        + 0.25 * (paperless == "Yes")
        + 0.30 * senior
        - 0.15 * (partner == "Yes")
        - 0.20 * (dependents == "Yes")
        - 0.45 * (addons["OnlineSecurity"] == "Yes")
        - 0.40 * (addons["TechSupport"] == "Yes")
        + 0.012 * (monthly - 65.0)
        + 0.35 * (fiber & (contract == "Month-to-month"))
        - 0.9 * ~has_internet
    )
    # Solve the intercept so the expected churn rate is exactly the target on this sample.
    intercept = brentq(lambda b: expit(logit + b).mean() - churn_rate, -20.0, 20.0)
    p_true = expit(logit + intercept + drift.churn_logit_shift)
    churn = np.where(rng.random(n) < p_true, "Yes", "No").astype(object)

    frame = pd.DataFrame(
        {
            schema.ID_COLUMN: _customer_ids(rng, n),
            "gender": _choice(rng, ("Female", "Male"), [0.5, 0.5], n),
            "SeniorCitizen": senior,
            "Partner": partner,
            "Dependents": dependents,
            "tenure": tenure,
            "PhoneService": phone,
            "MultipleLines": multiple,
            "InternetService": internet,
            **addons,
            "Contract": contract,
            "PaperlessBilling": paperless,
            "PaymentMethod": payment,
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            schema.LABEL_COLUMN: churn,
        }
    )[list(schema.REQUIRED_COLUMNS)]
    if with_truth:
        frame[schema.TRUTH_COLUMN] = p_true
    log.info("generated %d rows (seed %d), churn rate %.3f", n, seed, (churn == "Yes").mean())
    return frame


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write CSV or Parquet by the file suffix, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            raise ConfigError(f"--out must end in .csv or .parquet, got {path.name!r}")
    return path
