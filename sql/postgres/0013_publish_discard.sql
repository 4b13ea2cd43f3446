-- publish_discard(t, ...): drop the <table>_next tables of a publish that failed before its
-- swap committed; returns how many. PostgresStorage.publish builds each <table>_next on a
-- connection of its own, all at once, and commits them before the one transaction that
-- swaps them in (the server loads and indexes the tables on separate cores). A failed
-- publish calls this; a <table>_next it could not drop is dropped by the next
-- publish_prepare, as before. publish_drop_old (0012) and it share one body now.

-- Drop <table><p_suffix> of each table publish_target allows, where there is one; returns
-- how many. Not granted: reached only through the two SECURITY DEFINER entry points below.
CREATE FUNCTION publish_drop_suffixed(p_tables text[], p_suffix text) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_table text;
    v_dropped integer := 0;
BEGIN
    FOREACH v_table IN ARRAY p_tables LOOP
        PERFORM publish_target(v_table);
        IF to_regclass(format('public.%I', v_table || p_suffix)) IS NOT NULL THEN
            EXECUTE format('DROP TABLE public.%I', v_table || p_suffix);
            v_dropped := v_dropped + 1;
        END IF;
    END LOOP;
    RETURN v_dropped;
END;
$$;

CREATE OR REPLACE FUNCTION publish_drop_old(VARIADIC p_tables text[]) RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$ SELECT publish_drop_suffixed(p_tables, '_old') $$;

CREATE FUNCTION publish_discard(VARIADIC p_tables text[]) RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$ SELECT publish_drop_suffixed(p_tables, '_next') $$;

REVOKE EXECUTE ON FUNCTION publish_drop_suffixed(text[], text), publish_discard(text[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION publish_discard(text[]) TO rotation_pipeline, service_role;
