-- The DuckDB replay schema: the same tables and column names as the Postgres migrations
-- (sql/postgres/), types mapped. Enums become VARCHAR and check constraints are left out on
-- the event tables on purpose: DuckDB keeps whatever it is given, and the pipeline's
-- validation (transforms/validate.py) quarantines what Postgres would have refused.
-- Idempotent: every statement is IF NOT EXISTS.

CREATE SEQUENCE IF NOT EXISTS seq_id START 1;

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        VARCHAR NOT NULL,
    checksum    VARCHAR NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS users (
    id            BIGINT PRIMARY KEY,
    email         VARCHAR NOT NULL,
    username      VARCHAR NOT NULL,
    display_name  VARCHAR,
    role          VARCHAR NOT NULL DEFAULT 'user',        -- user_role
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    last_seen_at  TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS stores (
    id                BIGINT PRIMARY KEY,
    name              VARCHAR NOT NULL,
    slug              VARCHAR NOT NULL,
    discogs_username  VARCHAR NOT NULL,
    store_status      VARCHAR NOT NULL DEFAULT 'pending',  -- store_status
    city              VARCHAR,
    country           VARCHAR,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS store_managers (
    id          BIGINT PRIMARY KEY,
    store_id    BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS records (
    id                  BIGINT PRIMARY KEY,
    discogs_release_id  BIGINT NOT NULL,
    artist              VARCHAR NOT NULL,
    artist_sort         VARCHAR,
    title               VARCHAR NOT NULL,
    label               VARCHAR,
    catalog_number      VARCHAR,
    release_year        INTEGER,
    country             VARCHAR,
    genres              VARCHAR[],
    styles              VARCHAR[],
    images              JSON,
    videos              JSON,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS tracks (
    id                BIGINT PRIMARY KEY,
    record_id         BIGINT NOT NULL,
    position          VARCHAR,
    track_index       INTEGER NOT NULL,
    title             VARCHAR NOT NULL,
    duration_seconds  INTEGER,
    artists           JSON,
    credits           JSON,
    tags              VARCHAR[],
    created_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS store_inventory (
    id                  BIGINT PRIMARY KEY,
    store_id            BIGINT NOT NULL,
    record_id           BIGINT NOT NULL,
    discogs_listing_id  BIGINT NOT NULL,
    price               DECIMAL(10, 2),
    currency            VARCHAR NOT NULL DEFAULT 'EUR',
    record_condition    VARCHAR,                           -- record_condition
    sleeve_condition    VARCHAR,                           -- sleeve_condition
    record_status       VARCHAR NOT NULL DEFAULT 'for_sale', -- record_status
    listed_at           TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS audio_matches (
    id                BIGINT PRIMARY KEY,
    track_id          BIGINT NOT NULL,
    audio_platform    VARCHAR NOT NULL,                    -- audio_platform
    external_id       VARCHAR NOT NULL,
    url               VARCHAR,
    match_status      VARCHAR NOT NULL DEFAULT 'pending',  -- match_status
    confidence_score  DOUBLE,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS favorites (
    id                BIGINT PRIMARY KEY,
    user_id           BIGINT NOT NULL,
    favoritable_type  VARCHAR NOT NULL,                    -- 'record' | 'track' | 'store'
    favoritable_id    BIGINT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS user_collections (
    id           BIGINT PRIMARY KEY,
    user_id      BIGINT NOT NULL,
    name         VARCHAR NOT NULL,
    description  VARCHAR,
    is_public    BOOLEAN NOT NULL DEFAULT FALSE,
    item_count   INTEGER NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS user_collection_items (
    id             BIGINT PRIMARY KEY,
    collection_id  BIGINT NOT NULL,
    record_id      BIGINT NOT NULL,
    notes          VARCHAR,
    added_at       TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS user_follows (
    id          BIGINT PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    store_id    BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS play_history (
    id                     BIGINT PRIMARY KEY,
    user_id                BIGINT,
    track_id               BIGINT,
    action                 VARCHAR,                        -- play_action
    played_at              TIMESTAMPTZ,
    duration_played_ms     BIGINT,
    completion_percentage  DOUBLE,
    session_id             VARCHAR,
    device_type            VARCHAR,
    source                 VARCHAR,
    created_at             TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS usage_metrics (
    id           BIGINT PRIMARY KEY,
    user_id      BIGINT,
    session_id   VARCHAR,
    event_type   VARCHAR,
    entity_type  VARCHAR,
    entity_id    BIGINT,
    properties   JSON,
    occurred_at  TIMESTAMPTZ,
    created_at   TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS feedback (
    id               BIGINT PRIMARY KEY,
    user_id          BIGINT,
    feedback_type    VARCHAR NOT NULL,                     -- feedback_type
    feedback_status  VARCHAR NOT NULL DEFAULT 'open',      -- feedback_status
    message          VARCHAR NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS settings (
    key           VARCHAR PRIMARY KEY,
    value         JSON,
    setting_type  VARCHAR NOT NULL DEFAULT 'string',       -- setting_type
    description   VARCHAR,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- Written by the pipeline ------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS daily_metrics (
    metric_date   DATE NOT NULL,
    metric_type   VARCHAR NOT NULL,
    entity_type   VARCHAR NOT NULL,
    entity_id     VARCHAR NOT NULL,
    metric_name   VARCHAR NOT NULL,
    metric_value  DOUBLE NOT NULL,
    run_id        VARCHAR,
    computed_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    UNIQUE (metric_date, metric_type, entity_type, entity_id, metric_name)
);

CREATE TABLE IF NOT EXISTS content_similarity (
    source_type      VARCHAR NOT NULL,
    source_id        BIGINT NOT NULL,
    target_type      VARCHAR NOT NULL,
    target_id        BIGINT NOT NULL,
    similarity_type  VARCHAR NOT NULL,
    score            DOUBLE NOT NULL,
    rank             INTEGER NOT NULL,
    model_version    VARCHAR,
    run_id           VARCHAR,
    computed_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    expires_at       TIMESTAMPTZ,
    UNIQUE (source_type, source_id, target_type, target_id, similarity_type)
);

CREATE TABLE IF NOT EXISTS recommendation_data (
    user_id        BIGINT NOT NULL,
    data_type      VARCHAR NOT NULL,    -- 'recommendation' | 'preference'
    list_name      VARCHAR NOT NULL,    -- records, records_in_stock, tracks, stores, genres, styles, artists
    item_type      VARCHAR NOT NULL,    -- record, track, store, genre, style, artist
    item_id        BIGINT,              -- NULL for genre / style / artist
    item_key       VARCHAR,             -- the genre, style or artist name
    score          DOUBLE NOT NULL,
    confidence     DOUBLE NOT NULL,
    rank           INTEGER NOT NULL,
    reason         JSON,
    model_version  VARCHAR NOT NULL,
    run_id         VARCHAR,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    expires_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, list_name, rank)
);

CREATE TABLE IF NOT EXISTS jobs (
    id                 BIGINT PRIMARY KEY DEFAULT nextval('seq_id'),
    job_type           VARCHAR NOT NULL,                   -- job_type
    job_status         VARCHAR NOT NULL DEFAULT 'pending', -- job_status
    priority           INTEGER NOT NULL DEFAULT 0,
    progress_percent   DOUBLE NOT NULL DEFAULT 0,
    progress_message   VARCHAR,
    items_processed    BIGINT NOT NULL DEFAULT 0,
    items_quarantined  BIGINT NOT NULL DEFAULT 0,
    retry_count        INTEGER NOT NULL DEFAULT 0,
    max_retries        INTEGER NOT NULL DEFAULT 3,
    depends_on         BIGINT[],
    payload            JSON,
    result             JSON,
    error_message      VARCHAR,
    flow_run_id        VARCHAR,
    run_id             VARCHAR,
    started_at         TIMESTAMPTZ,
    completed_at       TIMESTAMPTZ,
    heartbeat_at       TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS job_logs (
    id          BIGINT PRIMARY KEY DEFAULT nextval('seq_id'),
    job_id      BIGINT NOT NULL,
    log_level   VARCHAR NOT NULL DEFAULT 'info',          -- log_level
    stage       VARCHAR,
    message     VARCHAR NOT NULL,
    details     JSON,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS performance_metrics (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_id'),
    job_id          BIGINT,
    run_id          VARCHAR,
    stage           VARCHAR NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    duration_ms     DOUBLE NOT NULL,
    rows_in         BIGINT,
    rows_out        BIGINT,
    peak_rss_bytes  BIGINT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
