"""Record tokens and store stock."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from transforms.content_features import record_tokens, store_stock

RECORDS = pl.DataFrame(
    {
        "id": [2, 1, 3],
        "artist": ["Miles Davis", "  ", "Art Blakey"],
        "title": ["Kind of Blue", "Untitled", "Moanin'"],
        "label": ["Columbia", None, "Blue Note"],
        "release_year": [1959, 0, None],
        "country": ["US", None, "us"],
        "genres": [["Jazz", " jazz "], None, ["Jazz", "Funk / Soul"]],
        "styles": [["Modal", "Hard Bop"], [], ["Hard Bop", ""]],
    },
    schema_overrides={"release_year": pl.Int32},
)


def _tokens(record_id: int) -> list[str]:
    out = record_tokens(RECORDS)
    return out.filter(pl.col("record_id") == record_id)["tokens"].to_list()[0]


def test_record_tokens_prefixed_lowercased_and_deduplicated():
    assert _tokens(2) == [
        "genre:jazz",
        "style:modal",
        "style:hard bop",
        "artist:miles davis",
        "label:columbia",
        "country:us",
        "decade:1950s",
    ]


def test_record_tokens_skip_nulls_blanks_and_unknown_years():
    assert _tokens(1) == []
    tokens = _tokens(3)
    assert "style:" not in tokens
    assert not any(t.startswith("decade:") for t in tokens)
    assert "genre:funk / soul" in tokens


def test_record_tokens_schema_and_order():
    out = record_tokens(RECORDS)
    assert out.schema == pl.Schema({"record_id": pl.Int64, "tokens": pl.List(pl.String)})
    assert out["record_id"].to_list() == [1, 2, 3]


def test_record_tokens_deterministic_and_input_untouched():
    before = RECORDS.clone()
    assert_frame_equal(record_tokens(RECORDS), record_tokens(RECORDS))
    assert_frame_equal(RECORDS, before)


def test_decade_boundaries():
    years = pl.DataFrame(
        {"id": [1, 2, 3], "release_year": [1960, 1969, 2001], "genres": [None] * 3}
    ).with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias("styles"))
    out = record_tokens(years)["tokens"].to_list()
    assert out == [["decade:1960s"], ["decade:1960s"], ["decade:2000s"]]


STORES = pl.DataFrame({"id": [10, 11, 12], "store_status": ["active", "suspended", "active"]})
INVENTORY = pl.DataFrame(
    {
        "id": [1, 2, 3, 4, 5, 6],
        "store_id": [10, 10, 10, 11, 12, 10],
        "record_id": [100, 101, 102, 100, 103, 100],
        "record_status": ["for_sale", "sold", "for_sale", "for_sale", "reserved", "for_sale"],
    }
)


def test_store_stock_is_for_sale_at_active_stores_unique():
    out = store_stock(INVENTORY, STORES)
    assert out.rows() == [(10, 100), (10, 102)]
    assert out.schema == pl.Schema({"store_id": pl.Int64, "record_id": pl.Int64})


def test_store_stock_accepts_int32_ids_and_leaves_inputs():
    inventory = INVENTORY.with_columns(pl.col("store_id", "record_id").cast(pl.Int32))
    before = inventory.clone()
    assert store_stock(inventory, STORES).rows() == [(10, 100), (10, 102)]
    assert_frame_equal(inventory, before)
