-- Roles, grants and Row Level Security. anon and authenticated see public content only;
-- authenticated users manage their own favourites, collections, follows and feedback;
-- the analytics tables are for service_role only. The tables' owner (the migrating role,
-- which the pipeline uses) bypasses RLS as owner: RLS is enabled, not forced.

-- Roles are cluster-wide: create them where missing, tolerating a concurrent creator.
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END;
$$;

-- The app user of the request: the JWT subject claim as a bigint, NULL when unset or not
-- a number. Tests and the API set it with SET request.jwt.claim.sub = '42'.
CREATE FUNCTION current_app_user_id() RETURNS bigint
LANGUAGE sql
STABLE
SET search_path = pg_catalog, public
AS $$
    SELECT CASE WHEN s ~ '^[0-9]{1,18}$' THEN s::bigint END
      FROM (SELECT current_setting('request.jwt.claim.sub', true) AS s) AS claim
$$;

-- Every table gets RLS --------------------------------------------------------------------
ALTER TABLE schema_migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE stores ENABLE ROW LEVEL SECURITY;
ALTER TABLE store_managers ENABLE ROW LEVEL SECURITY;
ALTER TABLE records ENABLE ROW LEVEL SECURITY;
ALTER TABLE tracks ENABLE ROW LEVEL SECURITY;
ALTER TABLE store_inventory ENABLE ROW LEVEL SECURITY;
ALTER TABLE audio_matches ENABLE ROW LEVEL SECURITY;
ALTER TABLE favorites ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_collections ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_collection_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_follows ENABLE ROW LEVEL SECURITY;
ALTER TABLE feedback ENABLE ROW LEVEL SECURITY;
ALTER TABLE settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE play_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE daily_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE content_similarity ENABLE ROW LEVEL SECURITY;
ALTER TABLE recommendation_data ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE performance_metrics ENABLE ROW LEVEL SECURITY;

-- service_role: everything, on every table -----------------------------------------------
DO $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY[
        'schema_migrations', 'users', 'stores', 'store_managers', 'records', 'tracks',
        'store_inventory', 'audio_matches', 'favorites', 'user_collections',
        'user_collection_items', 'user_follows', 'feedback', 'settings', 'play_history',
        'usage_metrics', 'daily_metrics', 'content_similarity', 'recommendation_data',
        'jobs', 'job_logs', 'performance_metrics'
    ] LOOP
        EXECUTE format(
            'CREATE POLICY %I ON public.%I FOR ALL TO service_role USING (true) WITH CHECK (true)',
            v_table || '_service_role_all', v_table
        );
    END LOOP;
END;
$$;

-- Public content: anon and authenticated read ---------------------------------------------
CREATE POLICY stores_public_read ON stores FOR SELECT TO anon, authenticated
    USING (store_status = 'active');
CREATE POLICY records_public_read ON records FOR SELECT TO anon, authenticated
    USING (true);
CREATE POLICY tracks_public_read ON tracks FOR SELECT TO anon, authenticated
    USING (true);
CREATE POLICY store_inventory_public_read ON store_inventory FOR SELECT TO anon, authenticated
    USING (record_status = 'for_sale'
           AND EXISTS (SELECT 1 FROM stores AS s
                        WHERE s.id = store_inventory.store_id AND s.store_status = 'active'));
CREATE POLICY audio_matches_public_read ON audio_matches FOR SELECT TO anon, authenticated
    USING (match_status IN ('verified', 'auto_approved'));

-- A signed-in user's own rows -------------------------------------------------------------
CREATE POLICY users_own_read ON users FOR SELECT TO authenticated
    USING (id = current_app_user_id());

CREATE POLICY favorites_own_read ON favorites FOR SELECT TO authenticated
    USING (user_id = current_app_user_id());
CREATE POLICY favorites_own_insert ON favorites FOR INSERT TO authenticated
    WITH CHECK (user_id = current_app_user_id());
CREATE POLICY favorites_own_delete ON favorites FOR DELETE TO authenticated
    USING (user_id = current_app_user_id());

CREATE POLICY user_collections_own_read ON user_collections FOR SELECT TO authenticated
    USING (user_id = current_app_user_id());
CREATE POLICY user_collections_own_insert ON user_collections FOR INSERT TO authenticated
    WITH CHECK (user_id = current_app_user_id());
CREATE POLICY user_collections_own_update ON user_collections FOR UPDATE TO authenticated
    USING (user_id = current_app_user_id()) WITH CHECK (user_id = current_app_user_id());
CREATE POLICY user_collections_own_delete ON user_collections FOR DELETE TO authenticated
    USING (user_id = current_app_user_id());

CREATE POLICY user_collection_items_own_read ON user_collection_items
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM user_collections AS c
                    WHERE c.id = user_collection_items.collection_id
                      AND c.user_id = current_app_user_id()));
CREATE POLICY user_collection_items_own_insert ON user_collection_items
    FOR INSERT TO authenticated
    WITH CHECK (EXISTS (SELECT 1 FROM user_collections AS c
                         WHERE c.id = user_collection_items.collection_id
                           AND c.user_id = current_app_user_id()));
CREATE POLICY user_collection_items_own_delete ON user_collection_items
    FOR DELETE TO authenticated
    USING (EXISTS (SELECT 1 FROM user_collections AS c
                    WHERE c.id = user_collection_items.collection_id
                      AND c.user_id = current_app_user_id()));

CREATE POLICY user_follows_own_read ON user_follows FOR SELECT TO authenticated
    USING (user_id = current_app_user_id());
CREATE POLICY user_follows_own_insert ON user_follows FOR INSERT TO authenticated
    WITH CHECK (user_id = current_app_user_id());
CREATE POLICY user_follows_own_delete ON user_follows FOR DELETE TO authenticated
    USING (user_id = current_app_user_id());

CREATE POLICY feedback_own_read ON feedback FOR SELECT TO authenticated
    USING (user_id = current_app_user_id());
CREATE POLICY feedback_own_insert ON feedback FOR INSERT TO authenticated
    WITH CHECK (user_id = current_app_user_id());

-- Grants: without them the policies above would never be reached ----------------------------
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

GRANT SELECT ON stores, records, tracks, store_inventory, audio_matches TO anon, authenticated;
GRANT SELECT ON users TO authenticated;
GRANT SELECT, INSERT, DELETE ON favorites, user_collection_items, user_follows TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON user_collections TO authenticated;
GRANT SELECT, INSERT ON feedback TO authenticated;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO authenticated;

GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO service_role;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO service_role;

-- The batch functions are not for the public roles.
REVOKE EXECUTE ON FUNCTION aggregate_daily_metrics(date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION cleanup_old_analytics_data(integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aggregate_daily_metrics(date) TO service_role;
GRANT EXECUTE ON FUNCTION cleanup_old_analytics_data(integer, timestamptz) TO service_role;
