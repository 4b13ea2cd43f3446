"""Record content features: prefixed tokens for the content-similarity model, and store stock.

`record_tokens` turns each record's metadata into a bag of lowercased, prefixed tokens
('genre:jazz', 'style:hard bop', 'artist:miles davis', 'label:blue note', 'decade:1960s',
'country:us'); nulls, blanks and unknown years (null or <= 0, Discogs' 0) are skipped.
`store_stock` is the for-sale stock of active stores, the one definition of "in stock" the
recommendation lists share.
"""

from __future__ import annotations

import polars as pl

from transforms.columns import ACTIVE_STORE, FOR_SALE

_LIST_FACETS = (("genres", "genre"), ("styles", "style"))
_SCALAR_FACETS = (("artist", "artist"), ("label", "label"), ("country", "country"))


def _clean(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.strip_chars().str.to_lowercase()


def _list_tokens(column: str, prefix: str) -> pl.Expr:
    cleaned = (
        pl.col(column)
        .cast(pl.List(pl.String))
        .fill_null(pl.lit([], dtype=pl.List(pl.String)))
        .list.eval(_clean(pl.element()))
        .list.eval(pl.element().filter(pl.element().str.len_chars() > 0))
    )
    return cleaned.list.eval(pl.lit(f"{prefix}:") + pl.element())


def _scalar_token(value: pl.Expr, prefix: str) -> pl.Expr:
    cleaned = _clean(value)
    token = pl.concat_list(pl.lit(f"{prefix}:") + cleaned)
    empty = pl.lit([], dtype=pl.List(pl.String))
    return pl.when(cleaned.str.len_chars() > 0).then(token).otherwise(empty)


def _decade() -> pl.Expr:
    year = pl.col("release_year").cast(pl.Int64)
    return pl.when(year > 0).then(((year // 10) * 10).cast(pl.String) + "s")


def record_tokens(records: pl.DataFrame) -> pl.DataFrame:
    """Return (record_id, tokens List(Utf8)): each record's unique prefixed lowercased tokens."""
    parts = [_list_tokens(col, prefix) for col, prefix in _LIST_FACETS]
    present = [(col, prefix) for col, prefix in _SCALAR_FACETS if col in records.columns]
    parts += [_scalar_token(pl.col(col), prefix) for col, prefix in present]
    if "release_year" in records.columns:
        parts.append(_scalar_token(_decade(), "decade"))
    return records.select(
        pl.col("id").cast(pl.Int64).alias("record_id"),
        pl.concat_list(parts).list.unique(maintain_order=True).alias("tokens"),
    ).sort("record_id")


def store_stock(inventory: pl.DataFrame, stores: pl.DataFrame) -> pl.DataFrame:
    """Return unique (store_id, record_id) of records for sale at active stores, sorted."""
    active = stores.filter(pl.col("store_status") == ACTIVE_STORE).select(
        pl.col("id").cast(pl.Int64).alias("store_id")
    )
    listed = inventory.filter(pl.col("record_status") == FOR_SALE).select(
        pl.col("store_id").cast(pl.Int64), pl.col("record_id").cast(pl.Int64)
    )
    return (
        listed.join(active, on="store_id", how="semi")
        .drop_nulls()
        .unique()
        .sort(["store_id", "record_id"])
    )
