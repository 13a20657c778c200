"""Reading the datasets and options the drift commands are given, with errors that say what to do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.errors import ConfigError, DataContractError, NotFoundError
from monitors.drift._arrays import ArrayFrame, read_parquet_arrays
from monitors.drift._compute import DriftOptions
from monitors.drift.reference import PROFILE_FILE, ReferenceProfile, build_profile

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["build_options", "is_profile_dir", "load_reference", "parse_assignments", "read_table"]


def read_table(path: str | Path, *, frame: bool = True) -> pd.DataFrame | ArrayFrame:
    """A parquet file, a directory of parquet files, or a CSV file, as a DataFrame.

    With ``frame=False`` a parquet file of plain numbers comes back as numpy columns (``_arrays``), the same
    values without importing pandas (~0.4 s of a CLI run); anything else is still read by pandas.
    """
    source = Path(path)
    if not source.exists():
        raise NotFoundError(f"{source} does not exist", hint="check the path (parquet file, parquet directory or CSV)")
    try:
        if source.suffix.lower() in (".csv", ".tsv"):
            import pandas as pd

            return pd.read_csv(source, sep="\t" if source.suffix.lower() == ".tsv" else ",")
        arrays = None if frame else read_parquet_arrays(source)
        return arrays if arrays is not None else _read_parquet(source)
    except Exception as exc:  # pyarrow/pandas raise many unrelated types for unreadable files
        raise DataContractError(
            f"cannot read {source} as a table ({type(exc).__name__}: {exc})",
            hint="give a parquet file, a directory of parquet files, or a .csv file",
        ) from exc


def _read_parquet(source: Path) -> pd.DataFrame:
    """``pd.read_parquet(source)`` with pyarrow's column-per-block conversion, which hands numeric columns over
    without a second copy and frees the arrow buffers as it goes (half the memory touched on big files)."""
    import pandas as pd
    import pyarrow.parquet as pq

    if pd.get_option("future.infer_string"):  # pandas' own conversion maps strings then: keep its path
        return pd.read_parquet(source)
    return pq.read_table(source, use_pandas_metadata=True).to_pandas(split_blocks=True, self_destruct=True)


def is_profile_dir(path: str | Path) -> bool:
    return (Path(path) / PROFILE_FILE).is_file()


def load_reference(
    path: str | Path, column_types: dict[str, str] | None = None, *, frame: bool = True
) -> tuple[ReferenceProfile, pd.DataFrame | ArrayFrame | None]:
    """A saved profile directory, or a dataset profiled on the fly; also returns the raw data when given it
    (numpy columns when ``frame=False`` allows them: see ``read_table``)."""
    if is_profile_dir(path):
        if column_types:
            raise ConfigError(
                "--type cannot change a saved profile's column types", hint="rebuild the profile with those types"
            )
        return ReferenceProfile.load(path), None
    data = read_table(path, frame=frame)
    try:
        return build_profile(data, column_types), data
    except ValueError as exc:
        raise ConfigError(str(exc), hint="column types are 'numerical' or 'categorical'") from exc


def parse_assignments(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    """``('a=0.2', 'b=ks')`` -> ``{'a': '0.2', 'b': 'ks'}``; rejects anything else with a usage hint."""
    parsed = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{option} {pair!r} is not COLUMN=VALUE", hint=f"e.g. {option} income=0.2")
        parsed[name] = value
    return parsed


def build_options(
    *,
    drift_share: float,
    method: str | None,
    num_method: str | None,
    cat_method: str | None,
    column_methods: tuple[str, ...],
    threshold: float | None,
    num_threshold: float | None,
    cat_threshold: float | None,
    column_thresholds: tuple[str, ...],
) -> DriftOptions:
    """DriftOptions from command-line flags (shared by `drift` and `monitor`)."""
    per_column_threshold = {}
    for name, text in parse_assignments(column_thresholds, "--column-threshold").items():
        try:
            per_column_threshold[name] = float(text)
        except ValueError:
            raise ConfigError(
                f"--column-threshold {name}={text!r}: not a number", hint="e.g. --column-threshold income=0.2"
            ) from None
    return DriftOptions(
        drift_share=drift_share,
        method=method,
        num_method=num_method,
        cat_method=cat_method,
        per_column_method=parse_assignments(column_methods, "--column-method"),
        threshold=threshold,
        num_threshold=num_threshold,
        cat_threshold=cat_threshold,
        per_column_threshold=per_column_threshold,
    )
