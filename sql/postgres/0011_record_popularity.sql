-- The popularity fallback of get_recommendations read a list the pipeline publishes instead
-- of aggregating 30 days of daily_metrics on every call (bench/api.py measured 180-220 ms
-- p50 for that path at the M profile). record_popularity holds, per run, the most popular
-- records overall and within each genre (users with a positive interaction in the run's
-- window, the same ranking as the pipeline's own fallback lists), their genres and whether
-- they are for sale at an active store; it is replaced in the same transaction as
-- recommendation_data. When it is empty (no run yet) the function computes the list from
-- daily_metrics as 0008 did.

CREATE TABLE record_popularity (
    record_id    bigint PRIMARY KEY REFERENCES records (id) ON DELETE CASCADE,
    plays        double precision NOT NULL CHECK (plays >= 0),
    genres       text[] NOT NULL DEFAULT '{}',
    in_stock     boolean NOT NULL DEFAULT false,
    run_id       text,
    computed_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE record_popularity ENABLE ROW LEVEL SECURITY;
CREATE POLICY record_popularity_service_role_all ON record_popularity FOR ALL TO service_role
    USING (true) WITH CHECK (true);
CREATE POLICY record_popularity_pipeline_all ON record_popularity FOR ALL TO rotation_pipeline
    USING (true) WITH CHECK (true);
GRANT ALL ON record_popularity TO service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON record_popularity TO rotation_pipeline;

CREATE OR REPLACE FUNCTION get_recommendations(
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
SET max_parallel_workers_per_gather = 0  -- a worker's start-up costs more than this query
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
    v_published boolean := EXISTS (SELECT 1 FROM record_popularity);
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
    WITH published AS (
        -- the pipeline's list (0011): a few hundred rows, read whole
        SELECT rp.record_id, rp.plays, rp.genres AS record_genres, rp.in_stock
          FROM record_popularity AS rp
         WHERE v_published
    ),
    computed AS (
        -- no published list yet: aggregate the last 30 days of daily_metrics (as in 0008)
        SELECT x.record_id, x.plays, r.genres AS record_genres, NULL::boolean AS in_stock
          FROM (SELECT CASE WHEN m.entity_id ~ '^[0-9]{1,18}$' THEN m.entity_id::bigint END
                           AS record_id,
                       sum(m.metric_value) AS plays
                  FROM daily_metrics AS m
                 WHERE NOT v_published
                   AND m.metric_type = 'record' AND m.entity_type = 'record'
                   AND m.metric_name = 'plays'
                   AND m.metric_date >= v_today - 30 AND m.metric_date < v_today
                 GROUP BY m.entity_id
                HAVING sum(m.metric_value) > 0) AS x
          JOIN records AS r ON r.id = x.record_id
    ),
    candidates AS (
        SELECT p.record_id, p.plays, p.record_genres,
               CASE WHEN p.record_genres && v_genres THEN 0 ELSE 1 END AS priority
          FROM (SELECT * FROM published UNION ALL SELECT * FROM computed) AS p
         WHERE p.record_id IS NOT NULL
           AND NOT (p.record_id = ANY (v_history))
           AND (p_list_name = 'records'
                OR coalesce(p.in_stock, EXISTS (SELECT 1
                             FROM store_inventory AS si
                             JOIN stores AS s ON s.id = si.store_id
                            WHERE si.record_id = p.record_id
                              AND si.record_status = 'for_sale'
                              AND s.store_status = 'active')))
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
