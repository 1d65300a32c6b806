"""Time-stamped synthetic customer history and point-in-time churn labels.

:func:`generate_history` draws a population with the static generator
(:func:`components.synthetic.generate`) and lets it live through ``months`` monthly snapshots:
tenure grows, bills drift (price rises, add-ons bought or dropped), some customers change
contract, new customers join and churners leave on a dated churn event. Each snapshot is one
row per active customer per feature group (account, services, billing) with an
``event_timestamp``; the billing rows carry the trailing-window aggregate ``charges_change_3m``
(this month's bill minus the bill three snapshots earlier, 0 for a customer with fewer months).

:func:`label_rows` turns the churn events into training rows: for each as-of date, every customer
active on it, labelled "Yes" when they churn within ``horizon_days`` after it. As-of dates whose
horizon runs past the end of the history are refused (their labels are unknown, not "No").

Feature columns keep the names of :mod:`components.schema`, so a table joined from these groups
is the Telco layout ingest, training and the ONNX graph already take.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from components import schema, synthetic
from components.config import ConfigError
from components.storage import atomic_path

log = logging.getLogger(__name__)

TIMESTAMP = "event_timestamp"  # Feast's default timestamp column name in every feature table
AS_OF = "as_of"  # the labels table's as-of date column
CHURN_DATE = "churn_date"
SIGNUP_DATE = "signup_date"
CHARGE_CHANGE_3M = "charges_change_3m"
TRAILING_MONTHS = 3

ACCOUNT_COLUMNS: tuple[str, ...] = (
    "gender", "SeniorCitizen", "Partner", "Dependents", "tenure",
    "Contract", "PaperlessBilling", "PaymentMethod",
)  # fmt: skip
SERVICE_FEATURES: tuple[str, ...] = (
    "PhoneService", "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup",
    "DeviceProtection", "TechSupport", "StreamingTV", "StreamingMovies",
)  # fmt: skip
BILLING_COLUMNS: tuple[str, ...] = ("MonthlyCharges", "TotalCharges")
# Every schema feature lives in exactly one group: the joined groups are the model's input.
GROUPS: dict[str, tuple[str, ...]] = {
    "account": ACCOUNT_COLUMNS,
    "services": SERVICE_FEATURES,
    "billing": BILLING_COLUMNS,
}
assert sorted(sum(GROUPS.values(), ())) == sorted(schema.FEATURE_NAMES), "groups must cover the schema"
TABLES: tuple[str, ...] = (*GROUPS, "churn_events", "customers")
DEFAULT_START = "2025-01-01"
_STREAMING = ("StreamingTV", "StreamingMovies")


@dataclass(frozen=True)
class History:
    """The generated tables (see the module docstring); timestamps are UTC."""

    account: pd.DataFrame
    services: pd.DataFrame
    billing: pd.DataFrame
    churn_events: pd.DataFrame  # customerID, churn_date
    customers: pd.DataFrame  # customerID, signup_date, churn_date (NaT while active)
    snapshots: tuple[pd.Timestamp, ...]

    @property
    def end(self) -> pd.Timestamp:
        """The last snapshot: nothing is known after it."""
        return self.snapshots[-1]

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write every table as ``<out_dir>/<name>.parquet`` (each atomically); return the paths."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in TABLES:
            paths[name] = out_dir / f"{name}.parquet"
            with atomic_path(paths[name]) as tmp:
                getattr(self, name).to_parquet(tmp, index=False)
        return paths


def recent_start(months: int) -> str:
    """The first of the month ``months - 1`` months ago: a history from it ends this month."""
    this_month = pd.Timestamp.now(tz="UTC").normalize().replace(day=1)
    return str((this_month - pd.DateOffset(months=months - 1)).date())


def read_history(folder: Path) -> History:
    """A history written by :meth:`History.write` (``churn data history``)."""
    tables = {name: pd.read_parquet(Path(folder) / f"{name}.parquet") for name in TABLES}
    snapshots = tuple(pd.Timestamp(t) for t in sorted(tables["account"][TIMESTAMP].unique()))
    return History(**tables, snapshots=snapshots)


def snapshot_dates(months: int, start: str = DEFAULT_START) -> tuple[pd.Timestamp, ...]:
    """``months`` month starts from ``start`` (UTC)."""
    return tuple(pd.date_range(pd.Timestamp(start, tz="UTC"), periods=months, freq="MS"))


def generate_history(
    customers: int, months: int, seed: int = 42, start: str = DEFAULT_START, join_share: float = 0.2
) -> History:
    """Draw ``customers`` customers living through ``months`` monthly snapshots (module docstring).

    ``join_share`` of them sign up during the history (tenure 0 at their first snapshot); the rest
    are on the books from the first one. Each customer's monthly churn hazard follows the static
    generator's true yearly churn probability, raised by recent price rises.
    """
    if customers < 1:
        raise ConfigError(f"customers must be >= 1, got {customers}")
    if months < TRAILING_MONTHS + 1:
        raise ConfigError(f"months must be >= {TRAILING_MONTHS + 1} (trailing windows), got {months}")
    if not 0.0 <= join_share < 1.0:
        raise ConfigError(f"join_share must be within [0, 1), got {join_share}")
    rng = np.random.default_rng(seed + 1)
    base = synthetic.generate(customers, seed=seed, with_truth=True).reset_index(drop=True)
    dates = snapshot_dates(months, start)
    n = len(base)
    join_month = np.where(rng.random(n) < join_share, rng.integers(1, months, n), 0)
    tenure = np.where(join_month > 0, 0, base["tenure"].to_numpy()).astype(np.int64)
    # Yearly churn probability -> monthly log-odds; recent price rises add to it.
    monthly_logit = logit(1.0 - (1.0 - base[schema.TRUTH_COLUMN].to_numpy().clip(1e-4, 0.999)) ** (1 / 12))
    state = base.copy()
    state["tenure"] = tenure.copy()
    monthly = state["MonthlyCharges"].to_numpy(dtype=float).copy()
    total = np.where(join_month > 0, 0.0, state["TotalCharges"].to_numpy(dtype=float))
    bills: list[np.ndarray] = []
    active = np.zeros(n, dtype=bool)
    churned_on = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    frames: dict[str, list[pd.DataFrame]] = {g: [] for g in GROUPS}

    for month, when in enumerate(dates):
        active |= (join_month == month) & np.isnat(churned_on)
        if month:
            _month_changes(rng, state, monthly, active)
        bills.append(monthly.copy())
        total = np.where(active, total + monthly, total)
        state["MonthlyCharges"] = np.round(monthly, 2)
        state["TotalCharges"] = np.round(total, 2)
        back = bills[max(0, month - TRAILING_MONTHS)]
        enough = month - join_month >= TRAILING_MONTHS
        change = np.where(enough, np.round(monthly - back, 2), 0.0)
        for group, columns in GROUPS.items():
            rows = state.loc[active, [schema.ID_COLUMN, *columns]].copy()
            if group == "billing":
                rows[CHARGE_CHANGE_3M] = change[active]
            rows.insert(1, TIMESTAMP, when)
            frames[group].append(rows)
        # Who leaves during the coming month: a dated event after this snapshot.
        p = expit(monthly_logit + 0.04 * np.clip(change, 0, None))
        leaving = active & (rng.random(n) < p)
        if month < months - 1:
            days = rng.integers(1, (dates[month + 1] - when).days, n)
            churned_on[leaving] = (when + pd.to_timedelta(days[leaving], unit="D")).tz_localize(None)
        else:
            leaving[:] = False
        active &= ~leaving
        state.loc[active, "tenure"] += 1

    signup = [
        dates[m] - pd.DateOffset(months=int(t))
        for m, t in zip(join_month, np.where(join_month > 0, 0, tenure), strict=True)
    ]
    churn_date = pd.to_datetime(churned_on).tz_localize("UTC")
    people = pd.DataFrame(
        {schema.ID_COLUMN: base[schema.ID_COLUMN], SIGNUP_DATE: signup, CHURN_DATE: churn_date}
    )
    events = people.loc[people[CHURN_DATE].notna(), [schema.ID_COLUMN, CHURN_DATE]].reset_index(drop=True)
    tables = {g: pd.concat(f, ignore_index=True) for g, f in frames.items()}
    log.info(
        "history: %d customers over %d months, %d snapshot rows, %d churn events",
        n, months, len(tables["account"]), len(events),
    )  # fmt: skip
    return History(**tables, churn_events=events, customers=people, snapshots=dates)


def _month_changes(rng: np.random.Generator, state: pd.DataFrame, monthly: np.ndarray, active: np.ndarray):
    """One month of change, in place: price rises, streaming add-ons bought or dropped, contract moves."""
    n = len(state)
    rise = active & (rng.random(n) < 0.08)
    monthly[rise] *= rng.uniform(1.03, 1.15, rise.sum())
    has_internet = (state["InternetService"] != "No").to_numpy()
    for column in _STREAMING:
        flip = active & has_internet & (rng.random(n) < 0.03)
        was_yes = (state[column] == "Yes").to_numpy()
        state.loc[flip & was_yes, column] = "No"
        state.loc[flip & ~was_yes, column] = "Yes"
        monthly[flip & was_yes] -= 10.0
        monthly[flip & ~was_yes] += 10.0
    upgrade = active & (state["Contract"] == "Month-to-month").to_numpy() & (rng.random(n) < 0.02)
    state.loc[upgrade, "Contract"] = "One year"
    np.clip(monthly, 18.0, 400.0, out=monthly)


def label_rows(history: History, as_of: list | None = None, horizon_days: int = 90) -> pd.DataFrame:
    """Training rows ``customerID, as_of, Churn``: every customer active on each as-of date,
    "Yes" when their churn event falls within ``horizon_days`` after it.

    ``as_of`` defaults to every snapshot whose horizon ends within the history. An as-of date
    whose horizon runs past the last snapshot is a :class:`ConfigError` (its labels are unknown).
    """
    if horizon_days < 1:
        raise ConfigError(f"horizon_days must be >= 1, got {horizon_days}")
    horizon = pd.Timedelta(days=horizon_days)
    if as_of is None:
        dates = [d for d in history.snapshots if d + horizon <= history.end]
        if not dates:
            raise ConfigError(
                f"no as-of date has a {horizon_days}-day horizon inside the history "
                f"({history.snapshots[0].date()}..{history.end.date()}): generate more months"
            )
    else:
        dates = [
            pd.Timestamp(d, tz="UTC") if pd.Timestamp(d).tzinfo is None else pd.Timestamp(d) for d in as_of
        ]
        late = [str(d.date()) for d in dates if d + horizon > history.end]
        if late:
            raise ConfigError(
                f"as_of {late}: the {horizon_days}-day horizon runs past the history's end "
                f"{history.end.date()}, so the label is unknown"
            )
    people = history.customers
    out = []
    for when in dates:
        on_books = (people[SIGNUP_DATE] <= when) & ~(people[CHURN_DATE] <= when)
        rows = people.loc[on_books]
        churns = (rows[CHURN_DATE] > when) & (rows[CHURN_DATE] <= when + horizon)
        out.append(
            pd.DataFrame(
                {
                    schema.ID_COLUMN: rows[schema.ID_COLUMN].to_numpy(),
                    AS_OF: when,
                    schema.LABEL_COLUMN: np.where(churns, "Yes", "No"),
                }
            )
        )
    return pd.concat(out, ignore_index=True)
