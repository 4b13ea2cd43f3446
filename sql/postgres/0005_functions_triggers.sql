-- Database functions: updated_at triggers, the collection item_count trigger,
-- aggregate_daily_metrics(date) and cleanup_old_analytics_data(...). Every function pins
-- its search_path so that a caller's search_path cannot redirect the names it uses.

CREATE FUNCTION update_updated_at_column() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER stores_updated_at BEFORE UPDATE ON stores
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER records_updated_at BEFORE UPDATE ON records
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER tracks_updated_at BEFORE UPDATE ON tracks
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER store_inventory_updated_at BEFORE UPDATE ON store_inventory
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER audio_matches_updated_at BEFORE UPDATE ON audio_matches
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER user_collections_updated_at BEFORE UPDATE ON user_collections
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER feedback_updated_at BEFORE UPDATE ON feedback
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER settings_updated_at BEFORE UPDATE ON settings
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER jobs_updated_at BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- user_collections.item_count, kept per statement (a bulk COPY updates each collection once).
-- SECURITY DEFINER: a user adding to their own collection need not hold UPDATE on it.
CREATE FUNCTION update_collection_item_count() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE user_collections AS c
           SET item_count = c.item_count + d.n
          FROM (SELECT collection_id, count(*) AS n FROM new_rows GROUP BY collection_id) AS d
         WHERE c.id = d.collection_id;
    ELSE
        UPDATE user_collections AS c
           SET item_count = greatest(c.item_count - d.n, 0)
          FROM (SELECT collection_id, count(*) AS n FROM old_rows GROUP BY collection_id) AS d
         WHERE c.id = d.collection_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER user_collection_items_count_insert
    AFTER INSERT ON user_collection_items
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION update_collection_item_count();
CREATE TRIGGER user_collection_items_count_delete
    AFTER DELETE ON user_collection_items
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION update_collection_item_count();

-- aggregate_daily_metrics(p_date): the daily metrics of one UTC date, exactly as defined in
-- transforms/columns.py, upserted into daily_metrics (run_id 'sql'); returns the rows
-- upserted. The day is the half-open UTC range [p_date, p_date + 1), which is the same set as
-- (played_at AT TIME ZONE 'UTC')::date = p_date but can use the played_at indexes.
-- Platform rows are always written; per-entity rows (track, record, device, the
-- recommendation source) only for entities with activity that day, with all their metrics.
CREATE FUNCTION aggregate_daily_metrics(p_date date) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_from timestamptz := p_date::timestamp AT TIME ZONE 'UTC';
    v_to   timestamptz := (p_date + 1)::timestamp AT TIME ZONE 'UTC';
    v_rows integer;
BEGIN
    WITH plays AS (
        SELECT p.user_id, p.track_id, t.record_id, p.action, p.duration_played_ms,
               p.session_id, p.device_type, p.source
          FROM play_history AS p
          JOIN tracks AS t ON t.id = p.track_id
         WHERE p.played_at >= v_from AND p.played_at < v_to
    ),
    day_usage AS (
        SELECT user_id, event_type, entity_type, entity_id
          FROM usage_metrics
         WHERE occurred_at >= v_from AND occurred_at < v_to
    ),
    day_favorites AS (
        SELECT favoritable_type, favoritable_id
          FROM favorites
         WHERE created_at >= v_from AND created_at < v_to
    ),
    platform AS (
        SELECT count(*) FILTER (WHERE action = 'play')::float8 AS plays,
               count(*) FILTER (WHERE action = 'complete')::float8 AS completes,
               count(*) FILTER (WHERE action = 'skip')::float8 AS skips,
               count(DISTINCT user_id)::float8 AS listeners,
               coalesce(sum(duration_played_ms), 0) / 1000.0 AS listening_seconds,
               count(DISTINCT session_id)::float8 AS sessions,
               count(*) FILTER (WHERE source = 'recommendation' AND action = 'play')::float8
                   AS recommended_plays
          FROM plays
    ),
    platform_counts AS (
        SELECT p.*,
               (SELECT count(*)
                  FROM (SELECT user_id FROM plays
                        UNION
                        SELECT user_id FROM day_usage WHERE user_id IS NOT NULL) AS a
               )::float8 AS active_users,
               (SELECT count(*) FROM users
                 WHERE created_at >= v_from AND created_at < v_to)::float8 AS new_users,
               (SELECT count(*) FROM day_favorites)::float8 AS favorites,
               (SELECT count(*) FROM user_collection_items
                 WHERE added_at >= v_from AND added_at < v_to)::float8 AS collection_adds,
               (SELECT count(*) FROM user_follows
                 WHERE created_at >= v_from AND created_at < v_to)::float8 AS follows,
               (SELECT count(*) FROM day_usage
                 WHERE event_type = 'page_view')::float8 AS page_views
          FROM platform AS p
    ),
    platform_rows AS (
        SELECT 'platform'::text AS metric_type, 'platform'::text AS entity_type,
               'all'::text AS entity_id, m.metric_name, m.metric_value
          FROM platform_counts AS c
         CROSS JOIN LATERAL (VALUES
               ('active_users', c.active_users),
               ('listeners', c.listeners),
               ('plays', c.plays),
               ('completes', c.completes),
               ('skips', c.skips),
               ('completion_rate', CASE WHEN c.plays > 0 THEN c.completes / c.plays ELSE 0 END),
               ('skip_rate', CASE WHEN c.plays > 0 THEN c.skips / c.plays ELSE 0 END),
               ('listening_seconds', c.listening_seconds::float8),
               ('sessions', c.sessions),
               ('avg_session_seconds',
                CASE WHEN c.sessions > 0 THEN c.listening_seconds::float8 / c.sessions ELSE 0 END),
               ('new_users', c.new_users),
               ('favorites', c.favorites),
               ('collection_adds', c.collection_adds),
               ('follows', c.follows),
               ('page_views', c.page_views)
         ) AS m (metric_name, metric_value)
    ),
    track_counts AS (
        SELECT 'track'::text AS metric_type, 'track'::text AS entity_type,
               track_id::text AS entity_id,
               count(*) FILTER (WHERE action = 'play')::float8 AS plays,
               count(*) FILTER (WHERE action = 'complete')::float8 AS completes,
               count(*) FILTER (WHERE action = 'skip')::float8 AS skips,
               count(DISTINCT user_id)::float8 AS listeners,
               (coalesce(sum(duration_played_ms), 0) / 1000.0)::float8 AS listening_seconds
          FROM plays
         GROUP BY track_id
    ),
    device_counts AS (
        SELECT 'device'::text, 'device'::text, device_type,
               count(*) FILTER (WHERE action = 'play')::float8,
               count(*) FILTER (WHERE action = 'complete')::float8,
               count(*) FILTER (WHERE action = 'skip')::float8,
               count(DISTINCT user_id)::float8,
               (coalesce(sum(duration_played_ms), 0) / 1000.0)::float8
          FROM plays
         WHERE device_type IS NOT NULL
         GROUP BY device_type
    ),
    listening_rows AS (
        SELECT c.metric_type, c.entity_type, c.entity_id, m.metric_name, m.metric_value
          FROM (SELECT * FROM track_counts UNION ALL SELECT * FROM device_counts) AS c
         CROSS JOIN LATERAL (VALUES
               ('plays', c.plays),
               ('completes', c.completes),
               ('skips', c.skips),
               ('listeners', c.listeners),
               ('listening_seconds', c.listening_seconds)
         ) AS m (metric_name, metric_value)
    ),
    record_plays AS (
        SELECT record_id,
               count(*) FILTER (WHERE action = 'play')::float8 AS plays,
               count(*) FILTER (WHERE action = 'complete')::float8 AS completes,
               count(*) FILTER (WHERE action = 'skip')::float8 AS skips,
               count(DISTINCT user_id)::float8 AS listeners,
               (coalesce(sum(duration_played_ms), 0) / 1000.0)::float8 AS listening_seconds
          FROM plays
         GROUP BY record_id
    ),
    record_views AS (
        SELECT entity_id AS record_id, count(*)::float8 AS page_views
          FROM day_usage
         WHERE event_type = 'page_view' AND entity_type = 'record' AND entity_id IS NOT NULL
         GROUP BY entity_id
    ),
    record_favorites AS (
        SELECT favoritable_id AS record_id, count(*)::float8 AS favorites
          FROM day_favorites
         WHERE favoritable_type = 'record'
         GROUP BY favoritable_id
    ),
    record_counts AS (
        SELECT coalesce(p.record_id, v.record_id, f.record_id) AS record_id,
               coalesce(p.plays, 0) AS plays, coalesce(p.completes, 0) AS completes,
               coalesce(p.skips, 0) AS skips, coalesce(p.listeners, 0) AS listeners,
               coalesce(p.listening_seconds, 0) AS listening_seconds,
               coalesce(v.page_views, 0) AS page_views, coalesce(f.favorites, 0) AS favorites
          FROM record_plays AS p
          FULL JOIN record_views AS v ON v.record_id = p.record_id
          FULL JOIN record_favorites AS f ON f.record_id = coalesce(p.record_id, v.record_id)
    ),
    record_rows AS (
        SELECT 'record'::text AS metric_type, 'record'::text AS entity_type,
               c.record_id::text AS entity_id, m.metric_name, m.metric_value
          FROM record_counts AS c
         CROSS JOIN LATERAL (VALUES
               ('plays', c.plays),
               ('completes', c.completes),
               ('skips', c.skips),
               ('listeners', c.listeners),
               ('listening_seconds', c.listening_seconds),
               ('page_views', c.page_views),
               ('favorites', c.favorites)
         ) AS m (metric_name, metric_value)
    ),
    recommendation_counts AS (
        SELECT count(*) FILTER (WHERE action = 'play')::float8 AS plays,
               count(*) FILTER (WHERE action = 'complete')::float8 AS completes,
               count(*) FILTER (WHERE action = 'skip')::float8 AS skips,
               count(DISTINCT user_id)::float8 AS listeners
          FROM plays
         WHERE source = 'recommendation'
        HAVING count(*) > 0
    ),
    recommendation_rows AS (
        SELECT 'recommendation'::text AS metric_type, 'source'::text AS entity_type,
               'recommendation'::text AS entity_id, m.metric_name, m.metric_value
          FROM recommendation_counts AS c
         CROSS JOIN platform AS p
         CROSS JOIN LATERAL (VALUES
               ('plays', c.plays),
               ('completes', c.completes),
               ('skips', c.skips),
               ('listeners', c.listeners),
               ('share_of_plays', CASE WHEN p.plays > 0 THEN c.plays / p.plays ELSE 0 END)
         ) AS m (metric_name, metric_value)
    ),
    all_rows AS (
        SELECT * FROM platform_rows
        UNION ALL SELECT * FROM listening_rows
        UNION ALL SELECT * FROM record_rows
        UNION ALL SELECT * FROM recommendation_rows
    )
    INSERT INTO daily_metrics AS d
           (metric_date, metric_type, entity_type, entity_id, metric_name, metric_value,
            run_id, computed_at)
    SELECT p_date, metric_type, entity_type, entity_id, metric_name, metric_value::float8,
           'sql', now()
      FROM all_rows
    ON CONFLICT (metric_date, metric_type, entity_type, entity_id, metric_name)
    DO UPDATE SET metric_value = EXCLUDED.metric_value,
                  run_id = 'sql',
                  computed_at = now();

    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END;
$$;

-- cleanup_old_analytics_data: deletes expired recommendation_data and content_similarity,
-- usage_metrics older than the retention but only for dates already aggregated (strictly
-- before the latest metric_date in daily_metrics), and job_logs / performance_metrics older
-- than the retention. Returns one row per table with the number of rows deleted.
CREATE FUNCTION cleanup_old_analytics_data(
    p_usage_retention_days integer DEFAULT 365,
    p_now timestamptz DEFAULT now()
) RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_cutoff timestamptz := p_now - make_interval(days => p_usage_retention_days);
    v_aggregated_until date;
    v_count bigint;
BEGIN
    IF p_usage_retention_days IS NULL OR p_usage_retention_days < 0 THEN
        RAISE EXCEPTION 'p_usage_retention_days must be a non-negative number of days';
    END IF;

    DELETE FROM recommendation_data AS r WHERE r.expires_at < p_now;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    table_name := 'recommendation_data'; rows_deleted := v_count; RETURN NEXT;

    DELETE FROM content_similarity AS s WHERE s.expires_at < p_now;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    table_name := 'content_similarity'; rows_deleted := v_count; RETURN NEXT;

    SELECT max(d.metric_date) INTO v_aggregated_until FROM daily_metrics AS d;
    DELETE FROM usage_metrics AS u
     WHERE u.occurred_at < v_cutoff
       AND u.occurred_at < (v_aggregated_until::timestamp AT TIME ZONE 'UTC');
    GET DIAGNOSTICS v_count = ROW_COUNT;
    table_name := 'usage_metrics'; rows_deleted := v_count; RETURN NEXT;

    DELETE FROM job_logs AS l WHERE l.created_at < v_cutoff;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    table_name := 'job_logs'; rows_deleted := v_count; RETURN NEXT;

    DELETE FROM performance_metrics AS m WHERE m.created_at < v_cutoff;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    table_name := 'performance_metrics'; rows_deleted := v_count; RETURN NEXT;
END;
$$;
