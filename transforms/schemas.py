"""The input tables' polars schemas, in foreign-key order (parents first).

What the synthetic generator produces and what an import fills: one frame per table with
these columns in this order (the replay schema, sql/duckdb/schema.sql, has the same
columns; tests check both).
"""

from __future__ import annotations

import polars as pl

ID = pl.Int64
TEXT = pl.String
TS = pl.Datetime("us", "UTC")
TEXTS = pl.List(pl.String)

INPUT_SCHEMAS: dict[str, pl.Schema] = {
    "users": pl.Schema(
        {
            "id": ID,
            "email": TEXT,
            "username": TEXT,
            "display_name": TEXT,
            "role": TEXT,
            "is_active": pl.Boolean,
            "created_at": TS,
            "updated_at": TS,
            "last_seen_at": TS,
        }
    ),
    "stores": pl.Schema(
        {
            "id": ID,
            "name": TEXT,
            "slug": TEXT,
            "discogs_username": TEXT,
            "store_status": TEXT,
            "city": TEXT,
            "country": TEXT,
            "created_at": TS,
            "updated_at": TS,
        }
    ),
    "store_managers": pl.Schema({"id": ID, "store_id": ID, "user_id": ID, "created_at": TS}),
    "records": pl.Schema(
        {
            "id": ID,
            "discogs_release_id": ID,
            "artist": TEXT,
            "artist_sort": TEXT,
            "title": TEXT,
            "label": TEXT,
            "catalog_number": TEXT,
            "release_year": pl.Int32,
            "country": TEXT,
            "genres": TEXTS,
            "styles": TEXTS,
            "images": TEXT,
            "videos": TEXT,
            "created_at": TS,
            "updated_at": TS,
        }
    ),
    "tracks": pl.Schema(
        {
            "id": ID,
            "record_id": ID,
            "position": TEXT,
            "track_index": pl.Int32,
            "title": TEXT,
            "duration_seconds": pl.Int32,
            "artists": TEXT,
            "credits": TEXT,
            "tags": TEXTS,
            "created_at": TS,
            "updated_at": TS,
        }
    ),
    "store_inventory": pl.Schema(
        {
            "id": ID,
            "store_id": ID,
            "record_id": ID,
            "discogs_listing_id": ID,
            "price": pl.Float64,
            "currency": TEXT,
            "record_condition": TEXT,
            "sleeve_condition": TEXT,
            "record_status": TEXT,
            "listed_at": TS,
            "created_at": TS,
            "updated_at": TS,
        }
    ),
    "audio_matches": pl.Schema(
        {
            "id": ID,
            "track_id": ID,
            "audio_platform": TEXT,
            "external_id": TEXT,
            "url": TEXT,
            "match_status": TEXT,
            "confidence_score": pl.Float64,
            "created_at": TS,
            "updated_at": TS,
        }
    ),
    "favorites": pl.Schema(
        {
            "id": ID,
            "user_id": ID,
            "favoritable_type": TEXT,
            "favoritable_id": ID,
            "created_at": TS,
        }
    ),
    "user_collections": pl.Schema(
        {
            "id": ID,
            "user_id": ID,
            "name": TEXT,
            "description": TEXT,
            "is_public": pl.Boolean,
            "item_count": pl.Int32,
            "created_at": TS,
            "updated_at": TS,
        }
    ),
    "user_collection_items": pl.Schema(
        {"id": ID, "collection_id": ID, "record_id": ID, "notes": TEXT, "added_at": TS}
    ),
    "user_follows": pl.Schema({"id": ID, "user_id": ID, "store_id": ID, "created_at": TS}),
    "play_history": pl.Schema(
        {
            "id": ID,
            "user_id": ID,
            "track_id": ID,
            "action": TEXT,
            "played_at": TS,
            "duration_played_ms": pl.Int64,
            "completion_percentage": pl.Float64,
            "session_id": TEXT,
            "device_type": TEXT,
            "source": TEXT,
            "created_at": TS,
        }
    ),
    "usage_metrics": pl.Schema(
        {
            "id": ID,
            "user_id": ID,
            "session_id": TEXT,
            "event_type": TEXT,
            "entity_type": TEXT,
            "entity_id": ID,
            "properties": TEXT,
            "occurred_at": TS,
            "created_at": TS,
        }
    ),
    "feedback": pl.Schema(
        {
            "id": ID,
            "user_id": ID,
            "feedback_type": TEXT,
            "feedback_status": TEXT,
            "message": TEXT,
            "created_at": TS,
            "updated_at": TS,
        }
    ),
    "settings": pl.Schema(
        {
            "key": TEXT,
            "value": TEXT,
            "setting_type": TEXT,
            "description": TEXT,
            "updated_at": TS,
        }
    ),
}
