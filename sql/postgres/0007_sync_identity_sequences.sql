-- Loaders (generate, import, replay) COPY rows with explicit ids; identity sequences do not
-- see those ids, so the next generated id would collide. sync_identity_sequences() moves
-- each identity sequence of the public schema up to its column's max(id) (never down) and
-- returns how many it moved. Call it after a bulk load with explicit ids.

CREATE FUNCTION sync_identity_sequences() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_col record;
    v_max bigint;
    v_moved integer := 0;
BEGIN
    FOR v_col IN
        SELECT c.relname AS table_name, a.attname AS column_name, s.seqrelid AS seq,
               q.last_value
          FROM pg_class AS c
          JOIN pg_attribute AS a ON a.attrelid = c.oid
          JOIN pg_depend AS d ON d.refobjid = c.oid AND d.refobjsubid = a.attnum
                             AND d.classid = 'pg_class'::regclass AND d.deptype = 'i'
          JOIN pg_sequence AS s ON s.seqrelid = d.objid
          JOIN pg_sequences AS q ON q.schemaname = 'public'
                                AND q.sequencename = (SELECT relname FROM pg_class
                                                       WHERE oid = s.seqrelid)
         WHERE c.relnamespace = 'public'::regnamespace
           AND c.relkind = 'r'
           AND a.attidentity <> ''
           AND NOT a.attisdropped
    LOOP
        EXECUTE format('SELECT max(%I) FROM public.%I', v_col.column_name, v_col.table_name)
           INTO v_max;
        IF v_max IS NOT NULL AND v_max > coalesce(v_col.last_value, 0) THEN
            PERFORM setval(v_col.seq, v_max, true);
            v_moved := v_moved + 1;
        END IF;
    END LOOP;
    RETURN v_moved;
END;
$$;

REVOKE EXECUTE ON FUNCTION sync_identity_sequences() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sync_identity_sequences() TO service_role;
