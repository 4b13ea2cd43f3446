-- The read contract of the recommendation API (a separate web service connecting as
-- service_role): get_recommendations, get_similar and get_user_preferences. Each validates
-- its arguments (SQLSTATE 22023 invalid_parameter_value, the message naming the bad
-- argument), caps its limit at 100 rows, reads only unexpired rows, and is served by an
-- index: idx_recommendation_data_lookup (user_id, list_name, rank) and
-- idx_content_similarity_lookup (source_type, source_id, similarity_type, rank) from 0004,
-- and idx_daily_metrics_record_plays below for the popularity fallback.
-- SECURITY INVOKER: the caller's grants and RLS policies apply (service_role reads all).

-- The fallback's popularity: one index-only range scan over the last 30 days of the
-- per-record 'plays' rows of daily_metrics (a partial index: only those rows are in it).
-- Its cost grows with the records played in those 30 days (about 100 ms for 3,000 records a
-- day on a small machine): fine for cold-start requests; a popularity list published by the
-- pipeline would make it a single range read.
CREATE INDEX idx_daily_metrics_record_plays
    ON daily_metrics (metric_date) INCLUDE (entity_id, metric_value)
    WHERE metric_type = 'record' AND entity_type = 'record' AND metric_name = 'plays';

-- get_recommendations(user, list, limit): the user's unexpired rows of the list in rank
-- order (is_fallback false). When there are none (a new user, or all rows expired) and the
-- list is 'records' or 'records_in_stock', a popularity fallback computed now (is_fallback
-- true, model_version 'fallback', expires_at NULL since it is not stored), mirroring
-- transforms/rec_fallback.py: records with the most 'plays' in daily_metrics over the last
-- 30 full UTC days (today excluded), those sharing a genre with the user's known genres first (reason
-- {"kind":"fallback","scope":"genres","genres":[...]}), then the overall most popular
-- (reason {"kind":"fallback","scope":"overall"}); the user's own records (favourites,
-- collections, the 500 most recent plays) excluded; 'records_in_stock' restricted to
-- records for sale at an active store. score = (1 + p) / 2 for genre rows and p / 2 for
-- overall rows, p = plays / the top candidate's plays; confidence 0.2. Other lists have no
-- fallback (empty result).
CREATE FUNCTION get_recommendations(
    p_user_id bigint,
    p_list_name text,
    p_limit integer DEFAULT 20
) RETURNS TABLE (
    rank integer,
    item_type text,
    item_id bigint,
    item_key text,
    score double precision,
    confidence double precision,
    reason jsonb,
    is_fallback boolean,
    model_version text,
    expires_at timestamptz
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public
AS $$
#variable_conflict use_column
DECLARE
    v_lists CONSTANT text[] := ARRAY[
        'records', 'records_in_stock', 'tracks', 'stores', 'genres', 'styles', 'artists'
    ];
    v_limit integer;
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_history bigint[];
    v_genres text[];
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'p_user_id must not be null' USING ERRCODE = '22023';
    END IF;
    IF p_list_name IS NULL OR NOT (p_list_name = ANY (v_lists)) THEN
        RAISE EXCEPTION 'unknown list name %: p_list_name must be one of %',
            coalesce(quote_literal(p_list_name), 'NULL'), array_to_string(v_lists, ', ')
            USING ERRCODE = '22023';
    END IF;
    IF p_limit IS NULL OR p_limit < 0 THEN
        RAISE EXCEPTION 'p_limit must be a non-negative integer, got %',
            coalesce(p_limit::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    v_limit := least(p_limit, 100);

    RETURN QUERY
    SELECT d.rank, d.item_type, d.item_id, d.item_key, d.score, d.confidence, d.reason,
           false, d.model_version, d.expires_at
      FROM recommendation_data AS d
     WHERE d.user_id = p_user_id
       AND d.list_name = p_list_name
       AND d.expires_at > now()
     ORDER BY d.rank
     LIMIT v_limit;
    IF FOUND OR v_limit = 0 OR p_list_name NOT IN ('records', 'records_in_stock') THEN
        RETURN;
    END IF;

    -- The user's records: favourites, collections and recent plays (each index-served).
    SELECT coalesce(array_agg(DISTINCT h.record_id), '{}') INTO v_history
      FROM (
            SELECT f.favoritable_id AS record_id
              FROM favorites AS f
             WHERE f.user_id = p_user_id AND f.favoritable_type = 'record'
            UNION ALL
            SELECT t.record_id
              FROM favorites AS f
              JOIN tracks AS t ON t.id = f.favoritable_id
             WHERE f.user_id = p_user_id AND f.favoritable_type = 'track'
            UNION ALL
            SELECT i.record_id
              FROM user_collections AS c
              JOIN user_collection_items AS i ON i.collection_id = c.id
             WHERE c.user_id = p_user_id
            UNION ALL
            SELECT t.record_id
              FROM (SELECT p.track_id
                      FROM play_history AS p
                     WHERE p.user_id = p_user_id AND p.action IN ('play', 'complete')
                     ORDER BY p.played_at DESC
                     LIMIT 500) AS recent
              JOIN tracks AS t ON t.id = recent.track_id
           ) AS h;

    SELECT coalesce(array_agg(DISTINCT g.genre ORDER BY g.genre), '{}') INTO v_genres
      FROM records AS r
     CROSS JOIN LATERAL unnest(r.genres) AS g (genre)
     WHERE r.id = ANY (v_history) AND g.genre IS NOT NULL;

    RETURN QUERY
    WITH popular AS (
        -- the cast is guarded in a CASE: a qual on the cast could run before the regex
        SELECT CASE WHEN m.entity_id ~ '^[0-9]{1,18}$' THEN m.entity_id::bigint END
                   AS record_id,
               sum(m.metric_value) AS plays
          FROM daily_metrics AS m
         WHERE m.metric_type = 'record' AND m.entity_type = 'record'
           AND m.metric_name = 'plays'
           AND m.metric_date >= v_today - 30 AND m.metric_date < v_today
         GROUP BY m.entity_id
        HAVING sum(m.metric_value) > 0
    ),
    candidates AS (
        SELECT p.record_id, p.plays, r.genres AS record_genres,
               CASE WHEN r.genres && v_genres THEN 0 ELSE 1 END AS priority
          FROM popular AS p
          JOIN records AS r ON r.id = p.record_id
         WHERE p.record_id IS NOT NULL
           AND NOT (p.record_id = ANY (v_history))
           AND (p_list_name = 'records'
                OR EXISTS (SELECT 1
                             FROM store_inventory AS si
                             JOIN stores AS s ON s.id = si.store_id
                            WHERE si.record_id = p.record_id
                              AND si.record_status = 'for_sale'
                              AND s.store_status = 'active'))
    ),
    chosen AS (
        SELECT c.*, (SELECT max(c2.plays) FROM candidates AS c2) AS top_plays
          FROM candidates AS c
         ORDER BY c.priority, c.plays DESC, c.record_id
         LIMIT v_limit
    )
    SELECT (row_number() OVER (ORDER BY o.priority, o.plays DESC, o.record_id))::integer,
           'record'::text,
           o.record_id,
           NULL::text,
           (((1 - o.priority) + o.plays / o.top_plays) / 2.0)::double precision,
           0.2::double precision,
           CASE WHEN o.priority = 0
                THEN jsonb_build_object(
                         'kind', 'fallback', 'scope', 'genres',
                         'genres', (SELECT to_jsonb(array_agg(DISTINCT g.genre ORDER BY g.genre))
                                      FROM unnest(o.record_genres) AS g (genre)
                                     WHERE g.genre = ANY (v_genres)))
                ELSE '{"kind": "fallback", "scope": "overall"}'::jsonb
           END,
           true,
           'fallback'::text,
           NULL::timestamptz
      FROM chosen AS o
     ORDER BY o.priority, o.plays DESC, o.record_id;
END;
$$;

-- get_similar(source type, source id, similarity type, limit): the source's unexpired
-- neighbours of that similarity type in rank order. When it has none of a 'collaborative'
-- or 'hybrid' type (a record nobody has played yet), its 'content' neighbours instead; the
-- similarity_type column says which were returned.
CREATE FUNCTION get_similar(
    p_source_type text,
    p_source_id bigint,
    p_similarity_type text DEFAULT 'hybrid',
    p_limit integer DEFAULT 20
) RETURNS TABLE (
    rank integer,
    target_type text,
    target_id bigint,
    score double precision,
    similarity_type text
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public
AS $$
#variable_conflict use_column
DECLARE
    v_source_types CONSTANT text[] := ARRAY['record', 'track', 'store'];
    v_similarity_types CONSTANT text[] := ARRAY['collaborative', 'content', 'hybrid'];
    v_limit integer;
BEGIN
    IF p_source_type IS NULL OR NOT (p_source_type = ANY (v_source_types)) THEN
        RAISE EXCEPTION 'unknown source type %: p_source_type must be one of %',
            coalesce(quote_literal(p_source_type), 'NULL'),
            array_to_string(v_source_types, ', ')
            USING ERRCODE = '22023';
    END IF;
    IF p_source_id IS NULL THEN
        RAISE EXCEPTION 'p_source_id must not be null' USING ERRCODE = '22023';
    END IF;
    IF p_similarity_type IS NULL OR NOT (p_similarity_type = ANY (v_similarity_types)) THEN
        RAISE EXCEPTION 'unknown similarity type %: p_similarity_type must be one of %',
            coalesce(quote_literal(p_similarity_type), 'NULL'),
            array_to_string(v_similarity_types, ', ')
            USING ERRCODE = '22023';
    END IF;
    IF p_limit IS NULL OR p_limit < 0 THEN
        RAISE EXCEPTION 'p_limit must be a non-negative integer, got %',
            coalesce(p_limit::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    v_limit := least(p_limit, 100);

    RETURN QUERY
    SELECT s.rank, s.target_type, s.target_id, s.score, s.similarity_type
      FROM content_similarity AS s
     WHERE s.source_type = p_source_type
       AND s.source_id = p_source_id
       AND s.similarity_type = p_similarity_type
       AND (s.expires_at IS NULL OR s.expires_at > now())
     ORDER BY s.rank
     LIMIT v_limit;
    IF FOUND OR v_limit = 0 OR p_similarity_type = 'content' THEN
        RETURN;
    END IF;

    RETURN QUERY
    SELECT s.rank, s.target_type, s.target_id, s.score, s.similarity_type
      FROM content_similarity AS s
     WHERE s.source_type = p_source_type
       AND s.source_id = p_source_id
       AND s.similarity_type = 'content'
       AND (s.expires_at IS NULL OR s.expires_at > now())
     ORDER BY s.rank
     LIMIT v_limit;
END;
$$;

-- get_user_preferences(user): the user's unexpired preference rows (data_type
-- 'preference': the genres, styles and artists lists), by list name then rank, at most 100
-- per list.
CREATE FUNCTION get_user_preferences(p_user_id bigint)
RETURNS TABLE (
    list_name text,
    rank integer,
    item_key text,
    score double precision,
    confidence double precision
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public
AS $$
#variable_conflict use_column
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'p_user_id must not be null' USING ERRCODE = '22023';
    END IF;

    RETURN QUERY
    SELECT d.list_name, d.rank, d.item_key, d.score, d.confidence
      FROM recommendation_data AS d
     WHERE d.user_id = p_user_id
       AND d.data_type = 'preference'
       AND d.expires_at > now()
       AND d.rank <= 100
     ORDER BY d.list_name, d.rank;
END;
$$;

-- For the API's role only.
REVOKE EXECUTE ON FUNCTION get_recommendations(bigint, text, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION get_similar(text, bigint, text, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION get_user_preferences(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_recommendations(bigint, text, integer) TO service_role;
GRANT EXECUTE ON FUNCTION get_similar(text, bigint, text, integer) TO service_role;
GRANT EXECUTE ON FUNCTION get_user_preferences(bigint) TO service_role;
