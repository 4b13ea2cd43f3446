"""Synthetic stores and their inventory (vectorised)."""

from __future__ import annotations

import numpy as np
import polars as pl

from transforms import columns as C
from transforms.synthetic.common import (
    US_PER_DAY,
    US_PER_SECOND,
    categorical,
    names,
    pick,
    rng_for,
    ts,
    uniform_us,
    unique_ids,
)
from transforms.synthetic.vocab import CITIES, COUNTRIES, COUNTRY_WEIGHTS, WORDS_A

LISTINGS_PER_RECORD = 1.5
STORE_WORDS = ("Records", "Vinyl", "Sounds", "Grooves", "Wax")


def stores_frame(seed: int, n: int, end_us: int) -> pl.DataFrame:
    """Return the stores frame: 85 % active, unique slug and discogs_username."""
    rng = rng_for(seed, "stores")
    ids = np.arange(1, n + 1, dtype=np.int64)
    name = names(rng, WORDS_A, STORE_WORDS, n)
    status = categorical(rng, [0.05, 0.85, 0.03, 0.07], n)
    status[0] = 1  # at least one active store
    created = uniform_us(rng, end_us - 4 * 365 * US_PER_DAY, end_us - 365 * US_PER_DAY, n)
    frame = pl.DataFrame(
        {
            "id": ids,
            "name": name,
            "store_status": pick(C.STORE_STATUSES, status),
            "city": pick(CITIES, rng.integers(0, len(CITIES), n)),
            "country": pick(COUNTRIES, categorical(rng, COUNTRY_WEIGHTS, n)),
            "created_at": ts(created),
        }
    )
    slug = pl.concat_str(
        [pl.col("name").str.to_lowercase().str.replace_all(" ", "-"), pl.lit("-"), pl.col("id")]
    )
    return frame.select(
        "id",
        "name",
        slug.alias("slug"),
        slug.str.replace_all("-", "_").alias("discogs_username"),
        "store_status",
        "city",
        "country",
        "created_at",
        pl.col("created_at").alias("updated_at"),
    )


def inventory_frame(seed: int, n_records: int, store_weight: np.ndarray, end_us: int):
    """Return store_inventory: ~1.5 listings per record, one per store and record."""
    rng = rng_for(seed, "inventory")
    want = round(LISTINGS_PER_RECORD * n_records)
    cdf = np.cumsum(store_weight)
    store = np.searchsorted(cdf, rng.random(want) * cdf[-1], side="right")
    pairs = pl.DataFrame({"store_id": store + 1, "record_id": rng.integers(1, n_records + 1, want)})
    pairs = pairs.unique(maintain_order=True)
    n = pairs.height
    cond = categorical(rng, [4, 20, 30, 22, 10, 8, 4, 2], n)
    quality = 1.6 - cond * 0.15
    price = np.round(np.clip(rng.lognormal(np.log(18), 0.6, n) * quality, 1, 9999), 2)
    listed = uniform_us(rng, end_us - 365 * US_PER_DAY, end_us - 60 * US_PER_SECOND, n)
    return pairs.with_columns(
        id=pl.Series(np.arange(1, n + 1, dtype=np.int64)),
        discogs_listing_id=pl.Series(unique_ids(rng, n, 1_000_000_000, 50)),
        price=pl.Series(price),
        currency=pl.lit("EUR"),
        record_condition=pick(C.RECORD_CONDITIONS, cond),
        sleeve_condition=pick(
            C.SLEEVE_CONDITIONS, categorical(rng, [3, 18, 28, 22, 9, 8, 3, 1, 4, 3, 1], n)
        ),
        record_status=pick(C.RECORD_STATUSES, categorical(rng, [80, 10, 4, 3, 3], n)),
        listed_at=ts(listed),
        created_at=ts(listed),
        updated_at=ts(listed),
    ).select(
        "id",
        "store_id",
        "record_id",
        "discogs_listing_id",
        "price",
        "currency",
        "record_condition",
        "sleeve_condition",
        "record_status",
        "listed_at",
        "created_at",
        "updated_at",
    )
