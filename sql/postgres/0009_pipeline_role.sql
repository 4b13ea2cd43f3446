-- Least privilege for the pipeline: the role rotation_pipeline (NOLOGIN; grant it to the
-- login the nightly run uses) reads the input tables, writes only the tables it publishes,
-- deletes old usage_metrics (retention), calls the batch functions, and creates TEMPORARY
-- staging tables for COPY. It writes neither users nor records, and gets nothing on any
-- other table (feedback, settings, or tables added later such as discogs_tokens: no default
-- privileges are granted to it). RLS is enabled on every table (0006), so each grant below
-- comes with a policy for this role.

-- Roles are cluster-wide: create it where missing, tolerating a concurrent creator.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rotation_pipeline') THEN
        BEGIN
            CREATE ROLE rotation_pipeline NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END;
$$;

GRANT USAGE ON SCHEMA public TO rotation_pipeline;

-- Staging tables for COPY (PUBLIC usually has TEMPORARY already; the pipeline must not
-- depend on that default).
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO rotation_pipeline', current_database());
END;
$$;

-- Inputs: read only -----------------------------------------------------------------------
GRANT SELECT ON
    users, stores, store_managers, records, tracks, store_inventory, audio_matches,
    favorites, user_collections, user_collection_items, user_follows, play_history,
    usage_metrics, schema_migrations
TO rotation_pipeline;

-- Retention: cleanup_old_analytics_data deletes old usage_metrics.
GRANT DELETE ON usage_metrics TO rotation_pipeline;

-- Outputs: the tables the pipeline publishes and its run bookkeeping ------------------------
GRANT SELECT, INSERT, UPDATE, DELETE ON
    daily_metrics, content_similarity, recommendation_data, jobs, job_logs,
    performance_metrics
TO rotation_pipeline;

-- The identity sequences of its own tables only.
DO $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY[
        'daily_metrics', 'content_similarity', 'recommendation_data', 'jobs', 'job_logs',
        'performance_metrics'
    ] LOOP
        EXECUTE format(
            'GRANT USAGE, SELECT ON SEQUENCE %s TO rotation_pipeline',
            pg_catalog.pg_get_serial_sequence(format('public.%I', v_table), 'id')
        );
    END LOOP;
END;
$$;

-- RLS policies matching the grants ----------------------------------------------------------
DO $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY[
        'users', 'stores', 'store_managers', 'records', 'tracks', 'store_inventory',
        'audio_matches', 'favorites', 'user_collections', 'user_collection_items',
        'user_follows', 'play_history', 'usage_metrics', 'schema_migrations'
    ] LOOP
        EXECUTE format(
            'CREATE POLICY %I ON public.%I FOR SELECT TO rotation_pipeline USING (true)',
            v_table || '_pipeline_read', v_table
        );
    END LOOP;
    FOREACH v_table IN ARRAY ARRAY[
        'daily_metrics', 'content_similarity', 'recommendation_data', 'jobs', 'job_logs',
        'performance_metrics'
    ] LOOP
        EXECUTE format(
            'CREATE POLICY %I ON public.%I FOR ALL TO rotation_pipeline '
            'USING (true) WITH CHECK (true)',
            v_table || '_pipeline_all', v_table
        );
    END LOOP;
END;
$$;

CREATE POLICY usage_metrics_pipeline_delete ON usage_metrics FOR DELETE TO rotation_pipeline
    USING (true);

-- Batch functions ---------------------------------------------------------------------------
-- aggregate_daily_metrics and cleanup_old_analytics_data stay SECURITY INVOKER: they run
-- with the grants above (reads of the inputs, writes of daily_metrics, the deletes of
-- cleanup), so calling them gives the role nothing it does not already hold.
GRANT EXECUTE ON FUNCTION aggregate_daily_metrics(date) TO rotation_pipeline;
GRANT EXECUTE ON FUNCTION cleanup_old_analytics_data(integer, timestamptz) TO rotation_pipeline;

-- sync_identity_sequences reads max(id) of every table with an identity column (feedback
-- included) and moves sequences with setval, which needs UPDATE on each sequence. Rather
-- than granting those to the pipeline, it runs as its owner: it takes no argument, pins its
-- search_path, only ever moves a sequence up to its column's current max(id), and returns
-- only a count.
ALTER FUNCTION sync_identity_sequences() SECURITY DEFINER;
GRANT EXECUTE ON FUNCTION sync_identity_sequences() TO rotation_pipeline;
