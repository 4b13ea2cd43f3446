-- publish_reserve_ids(t, count, sent): the ids of t_next's identity columns for a COPY of
-- `count` rows, handed to the caller instead of drawn row by row. A COPY that leaves t.id out
-- has the server call nextval once per row (at profile L, 9.5M calls: about a fifth of the
-- COPY's time, bench/README). This takes the same values at once: for each identity column
-- of t_next not named in `sent`, it advances the column's sequence by `count` values (the
-- first by nextval, the last by setval) and returns (column, first id, step), so that row i
-- of the COPY (from 0) gets first + i × step: the ids nextval would have given the rows in
-- COPY order, and the sequence is left where those calls would have left it. t_next and
-- its sequence are the caller's own until it commits (publish_prepare created them in its
-- transaction), so no other session draws from the sequence meanwhile. A block that would
-- pass the sequence's bound is refused, as the nextval that reached the bound would be.

CREATE FUNCTION publish_reserve_ids(p_table text, p_count bigint, p_sent text[])
RETURNS TABLE (column_name text, first_id bigint, step bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_next regclass;
    v_column record;
    v_last numeric;
BEGIN
    PERFORM publish_target(p_table);
    v_next := publish_next(p_table);
    IF p_count IS NULL OR p_count < 0 THEN
        RAISE EXCEPTION 'publish_reserve_ids(%): the count must be 0 or more, not %', p_table,
            coalesce(p_count::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF p_count = 0 THEN
        RETURN;  -- no row: no nextval, the sequence stays where it is
    END IF;
    FOR v_column IN
        SELECT a.attname, s.seqrelid, s.seqincrement, s.seqmin, s.seqmax
          FROM pg_attribute AS a
          JOIN pg_sequence AS s
            ON s.seqrelid = pg_get_serial_sequence(v_next::text, a.attname)::regclass
         WHERE a.attrelid = v_next AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attidentity <> ''
           AND NOT (a.attname::text = ANY (coalesce(p_sent, '{}')))
         ORDER BY a.attnum
    LOOP
        first_id := nextval(v_column.seqrelid);
        v_last := first_id::numeric + (p_count - 1)::numeric * v_column.seqincrement;
        IF v_last > v_column.seqmax OR v_last < v_column.seqmin THEN
            RAISE EXCEPTION 'publish_reserve_ids(%): % ids from % would pass the end of %',
                p_table, p_count, first_id, v_column.seqrelid::regclass
                USING ERRCODE = '2200H';  -- sequence_generator_limit_exceeded, as nextval
        END IF;
        PERFORM setval(v_column.seqrelid, v_last::bigint, true);
        column_name := v_column.attname;
        step := v_column.seqincrement;
        RETURN NEXT;
    END LOOP;
END;
$$;

REVOKE EXECUTE ON FUNCTION publish_reserve_ids(text, bigint, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION publish_reserve_ids(text, bigint, text[])
TO rotation_pipeline, service_role;
