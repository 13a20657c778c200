"""Deterministic, seeded credit-default data: one baseline world and the drift scenarios the loop must survive.

The same ``(scenario, rows, seed)`` always yields byte-identical parquet, so snapshot ids, tests and reproductions
are stable. Timestamps are microsecond precision (Feast's DuckDB store rejects nanoseconds).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.config import get_settings
from driftloop.errors import ConfigError, NotFoundError
from features.columns import (
    EMPLOYMENT_LENGTH,
    ENTITY_KEY,
    HOME_OWNERSHIP,
    LABEL,
    PURPOSES,
    TERMS,
    TIMESTAMP,
)

__all__ = ["DEFAULT_ROWS", "DEFAULT_SEED", "SCENARIOS", "Scenario", "generate", "resolve_dataset", "write_dataset"]

DEFAULT_ROWS = 20_000
DEFAULT_SEED = 7
BASELINE_START = pd.Timestamp("2026-01-05", tz="UTC")
WINDOW = pd.Timedelta(weeks=6)

_EMPLOYMENT_P = (0.12, 0.25, 0.22, 0.16, 0.25)
_HOME_P = (0.42, 0.45, 0.13)
_TERM_P = (0.72, 0.28)
_PURPOSE_P = (0.45, 0.2, 0.1, 0.08, 0.05, 0.05, 0.07)
_PURPOSE_RISK = {"small_business": 0.6, "medical": 0.3, "credit_card": -0.2, "car": -0.3}


@dataclass(frozen=True)
class Scenario:
    """A named data world: how it differs from baseline and why the loop cares."""

    name: str
    description: str
    covariate_shift: bool = False
    concept_drift: bool = False
    null_share: float = 0.0  # share of nulls injected into annual_income and employment_length
    new_categories: bool = False
    renamed: tuple[tuple[str, str], ...] = ()


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("baseline", "The reference world the first champion is trained on (6 weeks from 2026-01-05)."),
        Scenario(
            "covariate-shift",
            "Younger, poorer, more indebted applicants; the risk rule is unchanged. Drift alerts, model may still hold.",
            covariate_shift=True,
        ),
        Scenario(
            "concept-drift",
            "Same applicants, different risk rule (utilisation and DTI stop mattering, age starts to). AUC drops.",
            concept_drift=True,
        ),
        Scenario(
            "missing-spike",
            "An upstream outage: 35% of annual_income and employment_length are null. validate-data must fail.",
            null_share=0.35,
        ),
        Scenario(
            "new-category",
            "New purpose 'buy_now_pay_later' and home ownership 'OTHER' appear: unseen categories.",
            new_categories=True,
        ),
        Scenario(
            "schema-change",
            "The seeds' incident: upstream renamed `age` to `customer_age_years`. Must be caught before promotion.",
            renamed=(("age", "customer_age_years"),),
        ),
    )
}


def _choice(rng: np.random.Generator, values: tuple[str, ...], p: tuple[float, ...], rows: int) -> np.ndarray:
    return rng.choice(np.array(values, dtype=object), size=rows, p=np.array(p) / sum(p))


def _features(rng: np.random.Generator, rows: int, shifted: bool) -> pd.DataFrame:
    age = rng.normal(30 if shifted else 41, 8 if shifted else 12, rows).clip(18, 85).round().astype("int64")
    income = np.exp(rng.normal(np.log(43_000 if shifted else 62_000), 0.55, rows)).clip(8_000, 2_000_000).round(2)
    utilisation = rng.beta(4, 2, rows) if shifted else rng.beta(2, 3, rows)
    return pd.DataFrame(
        {
            "age": age,
            "annual_income": income,
            "employment_length": _choice(rng, EMPLOYMENT_LENGTH, _EMPLOYMENT_P, rows),
            "home_ownership": _choice(rng, HOME_OWNERSHIP, _HOME_P, rows),
            "debt_to_income": rng.normal(26 if shifted else 18, 8, rows).clip(0, 60).round(2),
            "credit_utilisation": utilisation.round(4),
            "open_accounts": rng.poisson(9, rows).clip(0, 60).astype("int64"),
            "delinquencies_2y": rng.poisson(0.3, rows).astype("int64"),
            "loan_amount": np.exp(rng.normal(np.log(14_000), 0.6, rows)).clip(500, 100_000).round(2),
            "term": _choice(rng, TERMS, _TERM_P, rows),
            "purpose": _choice(rng, PURPOSES, _PURPOSE_P, rows),
        }
    )


def _risk_logit(frame: pd.DataFrame, concept_drift: bool) -> np.ndarray:
    """The ground-truth risk rule; concept drift swaps which signals matter."""
    term60 = (frame["term"] == "60 months").to_numpy(float)
    rent = (frame["home_ownership"] == "RENT").to_numpy(float)
    new_job = (frame["employment_length"] == "< 1 year").to_numpy(float)
    purpose = frame["purpose"].map(_PURPOSE_RISK).fillna(0.0).to_numpy(float)
    log_income = np.log(frame["annual_income"].to_numpy(float)) - np.log(62_000)
    log_loan = np.log(frame["loan_amount"].to_numpy(float)) - np.log(14_000)
    age = frame["age"].to_numpy(float) - 41
    if concept_drift:
        return -1.6 + 0.05 * age - 0.7 * term60 + 0.9 * log_loan - 0.5 * purpose + 0.3 * new_job
    return (
        -2.0
        + 0.07 * (frame["debt_to_income"].to_numpy(float) - 18)
        + 2.4 * (frame["credit_utilisation"].to_numpy(float) - 0.4)
        + 0.6 * frame["delinquencies_2y"].to_numpy(float)
        - 0.8 * log_income
        - 0.02 * age
        + 0.7 * term60
        + 0.35 * rent
        + 0.4 * new_job
        + purpose
        + 0.25 * log_loan
    )


def _inject_nulls(rng: np.random.Generator, frame: pd.DataFrame, share: float) -> None:
    for column in ("annual_income", "employment_length"):
        mask = rng.random(len(frame)) < share
        frame[column] = frame[column].astype(object).where(~mask, None)
    frame["annual_income"] = pd.to_numeric(frame["annual_income"]).astype("float64")


def generate(scenario: str = "baseline", rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """One labelled row per loan application: entity key, timestamp, 11 features, ``default_12m``."""
    if scenario not in SCENARIOS:
        raise NotFoundError(f"unknown scenario {scenario!r}", hint=f"choose one of: {', '.join(SCENARIOS)}")
    if rows < 1:
        raise ConfigError(f"--rows must be positive, got {rows}", hint="e.g. --rows 20000")
    spec = SCENARIOS[scenario]
    index = list(SCENARIOS).index(scenario)
    rng = np.random.default_rng([seed, zlib.crc32(scenario.encode())])
    frame = _features(rng, rows, spec.covariate_shift)
    probability = 1.0 / (1.0 + np.exp(-_risk_logit(frame, spec.concept_drift)))
    label = (rng.random(rows) < probability).astype("int64")
    # a little missingness is normal; the missing-spike scenario is an outage
    _inject_nulls(rng, frame, spec.null_share or 0.01)
    if spec.new_categories:
        frame.loc[rng.random(rows) < 0.2, "purpose"] = "buy_now_pay_later"
        frame.loc[rng.random(rows) < 0.1, "home_ownership"] = "OTHER"
    start = BASELINE_START if scenario == "baseline" else BASELINE_START + WINDOW
    offsets = np.sort(rng.integers(0, int(WINDOW / pd.Timedelta(microseconds=1)), rows))
    timestamps = pd.to_datetime(start.value // 1000 + offsets, unit="us", utc=True).astype("datetime64[us, UTC]")
    head = pd.DataFrame({ENTITY_KEY: np.arange(rows, dtype="int64") + (index + 1) * 100_000_000, TIMESTAMP: timestamps})
    result = pd.concat([head, frame, pd.DataFrame({LABEL: label})], axis=1)
    return result.rename(columns=dict(spec.renamed))


def write_dataset(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write parquet atomically (a crash never leaves a half-written dataset behind)."""
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    frame.to_parquet(partial, index=False, coerce_timestamps="us", allow_truncated_timestamps=False)
    partial.replace(target)
    return target


def resolve_dataset(dataset: str, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> Path:
    """A scenario name (generated once into ``$DRIFTLOOP_HOME/data/``), a local path or a ``file://``/fsspec URI."""
    if dataset in SCENARIOS:
        target = get_settings().home / "data" / f"{dataset}-{rows}-s{seed}.parquet"
        if not target.exists():
            write_dataset(generate(dataset, rows, seed), target)
        return target
    if "://" in dataset and not dataset.startswith("file://"):
        return _fetch_remote(dataset)
    path = Path(dataset.removeprefix("file://")).expanduser().resolve()
    if not path.exists():
        raise NotFoundError(
            f"dataset {dataset!r} is neither a scenario nor an existing parquet file",
            hint=f"use a scenario ({', '.join(SCENARIOS)}) or `driftloop data generate --scenario baseline --out FILE`",
        )
    return path


def _fetch_remote(uri: str) -> Path:
    """Copy a remote parquet (s3://, gs://, http://…) locally: Feast's DuckDB source needs a local absolute path."""
    import hashlib

    import fsspec

    target = get_settings().home / "data" / "remote" / f"{hashlib.sha256(uri.encode()).hexdigest()[:16]}.parquet"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with fsspec.open(uri, "rb") as source:
            write_dataset(pd.read_parquet(source), target)
    return target
