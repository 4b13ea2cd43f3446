-- Retention by partition reads no row of what it drops, and never queues for its lock.
--
-- 0020's drop_event_partitions_before counted each partition (count(*)) before dropping it,
-- for cleanup_old_analytics_data's rows_deleted: at profile L that count was nearly all of
-- retention's time (bench/README). A partition's rows are now the statistics' count
-- (pg_class.reltuples: exact after VACUUM scanned it whole, ANALYZE's estimate otherwise,
-- both kept up by autovacuum); a partition never vacuumed nor analysed is counted, as before.
--
-- DROP TABLE of a partition takes ACCESS EXCLUSIVE on its table: waiting behind a long
-- reader would hold every later reader and writer of the app back. The drop now waits 5 s
-- at most; a partition whose lock was not had is kept (a WARNING says so) and goes at the
-- next cleanup, and the months after it are kept too, so retention never leaves a hole.

CREATE OR REPLACE FUNCTION drop_event_partitions_before(p_table text, p_cut timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '5s'
AS $$
DECLARE
    v_part record;
    v_rows bigint;
    v_total bigint := 0;
BEGIN
    FOR v_part IN SELECT p.*, c.reltuples
                    FROM event_partitions(p_table) AS p
                    JOIN pg_class AS c ON c.oid = format('public.%I', p.partition_name)::regclass
                   WHERE NOT p.is_default AND p.upper_bound IS NOT NULL
                     AND p.upper_bound <= p_cut
                   ORDER BY p.upper_bound LOOP
        IF v_part.reltuples >= 0 THEN
            v_rows := v_part.reltuples::bigint;
        ELSE  -- never vacuumed nor analysed: no statistics to go by
            EXECUTE format('SELECT count(*) FROM public.%I', v_part.partition_name) INTO v_rows;
        END IF;
        BEGIN
            EXECUTE format('DROP TABLE public.%I', v_part.partition_name);
        EXCEPTION WHEN lock_not_available THEN
            RAISE WARNING 'partition % kept: another session holds its table; the next '
                          'cleanup drops it', v_part.partition_name;
            EXIT;
        END;
        v_total := v_total + v_rows;
    END LOOP;
    RETURN v_total;
END;
$$;
