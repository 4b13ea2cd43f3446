-- Enum types of the Rotation schema. Values are spelled exactly as in transforms/columns.py
-- (USER_ROLES, STORE_STATUSES, ...); tests/test_migrations.py checks they stay in step.
-- Forward-only: to add a value, write a new migration with ALTER TYPE ... ADD VALUE.

CREATE TYPE user_role AS ENUM ('user', 'store_manager', 'admin', 'service');
CREATE TYPE store_status AS ENUM ('pending', 'active', 'suspended', 'inactive');
CREATE TYPE record_status AS ENUM ('for_sale', 'sold', 'reserved', 'draft', 'expired');
CREATE TYPE record_condition AS ENUM (
    'mint', 'near_mint', 'very_good_plus', 'very_good', 'good_plus', 'good', 'fair', 'poor'
);
CREATE TYPE sleeve_condition AS ENUM (
    'mint', 'near_mint', 'very_good_plus', 'very_good', 'good_plus', 'good', 'fair', 'poor',
    'generic', 'not_graded', 'no_cover'
);
CREATE TYPE audio_platform AS ENUM (
    'youtube', 'spotify', 'apple_music', 'soundcloud', 'bandcamp', 'discogs'
);
CREATE TYPE match_status AS ENUM (
    'pending', 'verified', 'auto_approved', 'rejected', 'manual_review'
);
CREATE TYPE feedback_type AS ENUM ('bug', 'feature_request', 'recommendation', 'general');
CREATE TYPE feedback_status AS ENUM ('open', 'in_progress', 'resolved', 'closed');
CREATE TYPE play_action AS ENUM ('play', 'pause', 'skip', 'complete', 'seek');
CREATE TYPE job_type AS ENUM (
    'nightly', 'backfill', 'daily_metrics', 'similarity', 'recommendations', 'evaluation',
    'cleanup', 'snapshot', 'import', 'generate'
);
CREATE TYPE job_status AS ENUM (
    'pending', 'running', 'completed', 'completed_with_warnings', 'failed', 'cancelled'
);
CREATE TYPE log_level AS ENUM ('debug', 'info', 'warning', 'error');
CREATE TYPE setting_type AS ENUM ('string', 'number', 'boolean', 'json');
