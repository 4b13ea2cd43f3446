-- Two cuts to the publish of the swapped tables (0012), measured at profile L (bench/README):
--   publish_defaults(t, {column: value})  gives columns of t_next a constant default for the
--                        COPY: the columns every row of a run shares (model_version, run_id,
--                        expires_at...) are then left out of the COPY stream and filled by
--                        the server, instead of being encoded, sent and parsed once per row;
--                        every column it does not name gets t's own default back, so the
--                        caller calls it again with '{}' after the COPY, before the swap;
--   publish_build_index(t, index)         builds one of t's indexes on the loaded t_next, so
--                        that several connections build a table's indexes at once (CREATE
--                        INDEX takes a SHARE lock: builds do not wait for each other); the
--                        one-at-a-time publish_build then attaches a primary key or unique
--                        constraint to its already built index (ADD CONSTRAINT ... USING
--                        INDEX) and builds only what is not built yet.
-- Both are SECURITY DEFINER like 0012's entry points and accept the same two tables.

-- t's t_next, or an error when publish_prepare has not made one.
CREATE FUNCTION publish_next(p_table text) RETURNS regclass
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_next regclass := to_regclass(format('public.%I', p_table || '_next'));
BEGIN
    IF v_next IS NULL THEN
        RAISE EXCEPTION 'no %_next: call publish_prepare(%) first', p_table,
            quote_literal(p_table) USING ERRCODE = '55000';
    END IF;
    RETURN v_next;
END;
$$;

-- publish_defaults(t, values): column defaults of t_next for the COPY, from a JSON object of
-- {column: value as text}; every other column gets t's own default back.
CREATE FUNCTION publish_defaults(p_table text, p_values jsonb) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_live regclass := publish_target(p_table);
    v_next regclass := publish_next(p_table);
    v_unknown text;
    v_column record;
BEGIN
    IF jsonb_typeof(p_values) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'publish_defaults(%): the values must be a JSON object, not %',
            p_table, coalesce(jsonb_typeof(p_values), 'NULL') USING ERRCODE = '22023';
    END IF;
    SELECT min(k) INTO v_unknown
      FROM jsonb_each(p_values) AS e (k, v)
     WHERE jsonb_typeof(v) IS DISTINCT FROM 'string'
        OR NOT EXISTS (SELECT 1 FROM pg_attribute AS a
                        WHERE a.attrelid = v_live AND a.attname = k AND a.attnum > 0
                          AND NOT a.attisdropped AND a.attidentity = ''
                          AND a.attgenerated = '');
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'publish_defaults(%): % is not a plain column of % with a text value',
            p_table, quote_ident(v_unknown), p_table USING ERRCODE = '22023';
    END IF;
    FOR v_column IN
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type,
               p_values ->> a.attname AS value,
               pg_get_expr(live.adbin, live.adrelid) AS live_default,
               pg_get_expr(nxt.adbin, nxt.adrelid) AS next_default
          FROM pg_attribute AS a
          LEFT JOIN pg_attrdef AS live ON live.adrelid = a.attrelid AND live.adnum = a.attnum
          JOIN pg_attribute AS n
            ON n.attrelid = v_next AND n.attname = a.attname AND NOT n.attisdropped
          LEFT JOIN pg_attrdef AS nxt ON nxt.adrelid = n.attrelid AND nxt.adnum = n.attnum
         WHERE a.attrelid = v_live AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attidentity = '' AND a.attgenerated = ''
         ORDER BY a.attnum
    LOOP
        IF v_column.value IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %L::%s', v_next,
                           v_column.attname, v_column.value, v_column.type);
        ELSIF v_column.next_default IS NOT DISTINCT FROM v_column.live_default THEN
            CONTINUE;
        ELSIF v_column.live_default IS NULL THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', v_next,
                           v_column.attname);
        ELSE
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', v_next,
                           v_column.attname, v_column.live_default);
        END IF;
    END LOOP;
END;
$$;

-- The CREATE INDEX statement of t's index `p_index` for t_next, under its temporary name, as
-- a plain (unique where it is) index even when a constraint stands behind it.
CREATE FUNCTION publish_index_sql(p_table text, p_index oid) RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_def text := pg_get_indexdef(p_index);
    v_unique text := CASE WHEN (SELECT indisunique FROM pg_index WHERE indexrelid = p_index)
                          THEN 'UNIQUE ' ELSE '' END;
    v_name text := (SELECT relname FROM pg_class WHERE oid = p_index);
    v_prefix text := format('CREATE %sINDEX %I ON public.%I USING ', v_unique, v_name, p_table);
BEGIN
    IF left(v_def, length(v_prefix)) <> v_prefix THEN
        RAISE EXCEPTION 'publish %: unexpected index definition %', p_table, v_def;
    END IF;
    RETURN format('CREATE %sINDEX %I ON public.%I USING ', v_unique,
                  publish_temp_name(v_name, 'next'), p_table || '_next')
           || substr(v_def, length(v_prefix) + 1);
END;
$$;

-- publish_build_index(t, index): build t's index named `p_index` on the loaded t_next;
-- returns false for an exclusion constraint's index, which only publish_build makes. One
-- build per connection: no parallel workers of its own.
CREATE FUNCTION publish_build_index(p_table text, p_index text) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET maintenance_work_mem = '1GB'
SET max_parallel_maintenance_workers = 0
AS $$
DECLARE
    v_live regclass := publish_target(p_table);
    v_index record;
BEGIN
    PERFORM publish_next(p_table);
    SELECT i.indexrelid, c.contype INTO v_index
      FROM pg_index AS i
      JOIN pg_class AS ic ON ic.oid = i.indexrelid
      LEFT JOIN pg_constraint AS c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
     WHERE i.indrelid = v_live AND ic.relname = p_index;
    IF v_index.indexrelid IS NULL THEN
        RAISE EXCEPTION 'publish_build_index(%): % is not an index of %', p_table,
            coalesce(quote_literal(p_index), 'NULL'), p_table USING ERRCODE = '22023';
    END IF;
    IF v_index.contype = 'x' THEN
        RETURN false;
    END IF;
    EXECUTE publish_index_sql(p_table, v_index.indexrelid);
    RETURN true;
END;
$$;

-- publish_build(t), as in 0012, now finishing what publish_build_index began: an index built
-- already is kept (a primary key or unique constraint takes it over), the rest built here.
CREATE OR REPLACE FUNCTION publish_build(p_table text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET maintenance_work_mem = '1GB'
AS $$
DECLARE
    v_live regclass := publish_target(p_table);
    v_next text := publish_next(p_table)::text;
    v_index record;
    v_temp text;
BEGIN
    FOR v_index IN
        SELECT i.indexrelid, ic.relname, c.oid AS constraint_oid, c.contype,
               c.condeferrable, c.condeferred
          FROM pg_index AS i
          JOIN pg_class AS ic ON ic.oid = i.indexrelid
          LEFT JOIN pg_constraint AS c
                 ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                AND c.contype IN ('p', 'u', 'x')
         WHERE i.indrelid = v_live
         ORDER BY i.indisprimary DESC, ic.relname
    LOOP
        v_temp := publish_temp_name(v_index.relname, 'next');
        IF to_regclass(format('public.%I', v_temp)) IS NULL THEN
            IF v_index.constraint_oid IS NOT NULL THEN
                EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', v_next, v_temp,
                               pg_get_constraintdef(v_index.constraint_oid));
            ELSE
                EXECUTE publish_index_sql(p_table, v_index.indexrelid);
            END IF;
        ELSIF v_index.contype IN ('p', 'u') THEN
            EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s USING INDEX %I%s', v_next,
                           v_temp,
                           CASE v_index.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
                           v_temp,
                           CASE WHEN v_index.condeferred THEN ' DEFERRABLE INITIALLY DEFERRED'
                                WHEN v_index.condeferrable THEN ' DEFERRABLE' ELSE '' END);
        END IF;
    END LOOP;
    FOR v_index IN
        SELECT c.conname, c.oid FROM pg_constraint AS c
         WHERE c.conrelid = v_live AND c.contype = 'f' ORDER BY c.conname
    LOOP
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', v_next, v_index.conname,
                       pg_get_constraintdef(v_index.oid));
    END LOOP;
    EXECUTE format('ANALYZE %s', v_next);
END;
$$;

REVOKE EXECUTE ON FUNCTION
    publish_next(text), publish_defaults(text, jsonb), publish_index_sql(text, oid),
    publish_build_index(text, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION publish_defaults(text, jsonb), publish_build_index(text, text)
TO rotation_pipeline, service_role;
