"""Column names, enum values and metric names: the one place the pipeline spells them."""

from __future__ import annotations

# play_history -------------------------------------------------------------------------------
PLAY_ACTIONS = ("play", "pause", "skip", "complete", "seek")
PLAY_SOURCES = ("recommendation", "search", "store", "collection", "browse", "similar", "profile")
DEVICE_TYPES = ("mobile", "desktop", "tablet", "web")
RECOMMENDATION_SOURCE = "recommendation"

# usage_metrics ------------------------------------------------------------------------------
EVENT_TYPES = (
    "page_view",
    "search",
    "favorite",
    "unfavorite",
    "collection_add",
    "follow",
    "share",
    "signup",
    "login",
    "listing_click",
)
PAGE_VIEW = "page_view"
ENTITY_TYPES = ("record", "track", "store", "collection", "user", "search", "home")

# favorites ----------------------------------------------------------------------------------
FAVORITABLE_TYPES = ("record", "track", "store")

# enums of the Rotation schema (Postgres types of the same name) ------------------------------
USER_ROLES = ("user", "store_manager", "admin", "service")
STORE_STATUSES = ("pending", "active", "suspended", "inactive")
ACTIVE_STORE = STORE_STATUSES[1]  # a store whose listings are shown
RECORD_STATUSES = ("for_sale", "sold", "reserved", "draft", "expired")
FOR_SALE = RECORD_STATUSES[0]  # a listing that can be bought
RECORD_CONDITIONS = (
    "mint",
    "near_mint",
    "very_good_plus",
    "very_good",
    "good_plus",
    "good",
    "fair",
    "poor",
)
SLEEVE_CONDITIONS = (*RECORD_CONDITIONS, "generic", "not_graded", "no_cover")
AUDIO_PLATFORMS = ("youtube", "spotify", "apple_music", "soundcloud", "bandcamp", "discogs")
MATCH_STATUSES = ("pending", "verified", "auto_approved", "rejected", "manual_review")
PLAYABLE_MATCH_STATUSES = ("verified", "auto_approved")
FEEDBACK_TYPES = ("bug", "feature_request", "recommendation", "general")
FEEDBACK_STATUSES = ("open", "in_progress", "resolved", "closed")
JOB_TYPES = (
    "nightly",
    "backfill",
    "daily_metrics",
    "similarity",
    "recommendations",
    "evaluation",
    "cleanup",
    "snapshot",
    "import",
    "generate",
    "tune",  # 0022
)
JOB_STATUSES = (
    "pending",
    "running",
    "completed",
    "completed_with_warnings",
    "failed",
    "cancelled",
    "skipped",  # a nightly whose lists were not published (migration 0018)
)
LOG_LEVELS = ("debug", "info", "warning", "error")
SETTING_TYPES = ("string", "number", "boolean", "json")

# daily_metrics ------------------------------------------------------------------------------
# metric_type / entity_type / entity_id of each kind of row. Platform-wide rows use
# entity_type 'platform' and entity_id 'all' so they cannot escape the unique key via NULL.
PLATFORM = ("platform", "platform", "all")
METRIC_TYPES = ("platform", "track", "record", "store", "device", "recommendation", "model_quality")

PLATFORM_METRICS = (
    "active_users",  # distinct users with a play or a usage event that day
    "listeners",  # distinct users with a play_history row that day
    "plays",  # play_history rows with action 'play'
    "completes",  # rows with action 'complete'
    "skips",  # rows with action 'skip'
    "completion_rate",  # completes / plays (0 when no plays)
    "skip_rate",  # skips / plays (0 when no plays)
    "listening_seconds",  # sum(duration_played_ms) / 1000 over all play_history rows
    "sessions",  # distinct non-null session_id in play_history
    "avg_session_seconds",  # listening_seconds / sessions (0 when no sessions)
    "new_users",  # users created that day
    "favorites",  # favorites created that day
    "collection_adds",  # user_collection_items added that day
    "follows",  # user_follows created that day
    "page_views",  # usage_metrics rows with event_type 'page_view'
)
TRACK_METRICS = ("plays", "completes", "skips", "listeners", "listening_seconds")
RECORD_METRICS = (*TRACK_METRICS, "page_views", "favorites")
STORE_METRICS = ("plays", "page_views", "new_followers")
DEVICE_METRICS = ("plays", "completes", "skips", "listeners", "listening_seconds")
RECOMMENDATION_METRICS = ("plays", "completes", "skips", "listeners", "share_of_plays")
MODEL_QUALITY_METRICS = ("precision_at_10", "recall_at_10", "ndcg_at_10", "coverage")

# content_similarity ---------------------------------------------------------------------------
SIMILARITY_TYPES = ("collaborative", "content", "hybrid")

# recommendation_data --------------------------------------------------------------------------
RECOMMENDATION_LISTS = {  # list_name -> (data_type, item_type)
    "records": ("recommendation", "record"),
    "records_in_stock": ("recommendation", "record"),
    "tracks": ("recommendation", "track"),
    "stores": ("recommendation", "store"),
    "genres": ("preference", "genre"),
    "styles": ("preference", "style"),
    "artists": ("preference", "artist"),
}

# Output columns in table order (what publish writes) ------------------------------------------
DAILY_METRICS_COLUMNS = (
    "metric_date",
    "metric_type",
    "entity_type",
    "entity_id",
    "metric_name",
    "metric_value",
    "run_id",
    "computed_at",
)
CONTENT_SIMILARITY_COLUMNS = (
    "source_type",
    "source_id",
    "target_type",
    "target_id",
    "similarity_type",
    "score",
    "rank",
    "model_version",
    "run_id",
    "computed_at",
    "expires_at",
)
RECOMMENDATION_COLUMNS = (
    "user_id",
    "data_type",
    "list_name",
    "item_type",
    "item_id",
    "item_key",
    "score",
    "confidence",
    "rank",
    "reason",
    "model_version",
    "run_id",
    "created_at",
    "expires_at",
)
