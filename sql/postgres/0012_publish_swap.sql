-- Whole-table publishing by swapping in a freshly built table (flows/storage/postgres.py).
-- Replacing content_similarity and recommendation_data by DELETE + COPY kept every index
-- live during the load, visited each just-deleted duplicate on every unique check and left
-- the table and its indexes bloated (111 s for 17M rows, 250 s on the next run). Instead,
-- inside the one publish transaction:
--   publish_prepare(t)   creates t_next like t (columns, defaults, NOT NULL, CHECK, identity,
--                        storage, comments, reloptions; no index, no RLS) with t's owner and
--                        t's grants on the table and its identity sequence (so the caller
--                        COPYs into it: no RLS on it yet), the sequence continuing t's ids;
--   (the caller COPYs the rows with FREEZE: visible to every snapshot, see flows/pgcopy.py)
--   publish_build(t)     builds on t_next the indexes, primary/unique/exclusion and foreign
--                        keys of t, read from the catalogue (pg_get_indexdef,
--                        pg_get_constraintdef: a later migration's index is followed), under
--                        temporary names, then ANALYZEs it;
--   publish_swap(t, ...) takes ACCESS EXCLUSIVE on every t (a short lock_timeout, retried:
--                        never queued behind a long reader), renames t and its indexes,
--                        constraints and sequence aside (t_old), gives t_next t's names, and
--                        re-creates t's RLS flags and policies on it. The caller COMMITs
--                        right after it, then calls
--   publish_drop_old(t, ...) in a transaction of its own.
-- Only the swap's ACCESS EXCLUSIVE blocks readers, and only from the swap to the COMMIT. A
-- killed run rolls all of it back; a t_next or t_old left by anything else is dropped by the
-- next publish_prepare. The pipeline role owns no table and gets no DDL right: these
-- functions are SECURITY DEFINER (their owner is the tables' owner), accept only the two
-- tables below, and refuse a table that something else depends on (a view, a foreign key to
-- it, a trigger, a publication...): such a dependant would follow the old table. Their
-- search_path ends with pg_temp: otherwise the caller's temporary tables (the pipeline may
-- create them) would be searched first and could stand in for pg_class and the like.

-- The live table of an allowed name, or an error.
CREATE FUNCTION publish_target(p_table text) RETURNS regclass
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_allowed CONSTANT text[] := ARRAY['content_similarity', 'recommendation_data'];
BEGIN
    IF p_table IS NULL OR NOT (p_table = ANY (v_allowed)) THEN
        RAISE EXCEPTION 'cannot publish % by swapping: only % are',
            coalesce(quote_literal(p_table), 'NULL'), array_to_string(v_allowed, ', ')
            USING ERRCODE = '22023';
    END IF;
    RETURN format('public.%I', p_table)::regclass;
END;
$$;

-- The name an index, constraint or sequence of t has while it is on t_next ('next') or on
-- the replaced table t_old ('old').
CREATE FUNCTION publish_temp_name(p_name text, p_side text) RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT left(p_name, 62 - length(p_side)) || '_' || p_side
$$;

-- What a swap would lose or break: objects depending on the table or its row type (views,
-- rules, foreign keys from other tables, functions or columns of its type), user triggers,
-- publications, inheritance, a replica identity index.
CREATE FUNCTION publish_dependents(p_live regclass) RETURNS text[]
LANGUAGE sql
STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT coalesce(array_agg(what ORDER BY what), '{}')
      FROM (
            SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS what
              FROM pg_depend AS d
             WHERE d.deptype = 'n'
               AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = p_live)
                    OR (d.refclassid = 'pg_type'::regclass
                        AND d.refobjid = (SELECT reltype FROM pg_class WHERE oid = p_live)))
               AND NOT EXISTS (  -- its own CHECK constraints and keys (not a self-reference)
                       SELECT 1 FROM pg_constraint AS c
                        WHERE d.classid = 'pg_constraint'::regclass AND c.oid = d.objid
                          AND c.conrelid = p_live AND c.confrelid <> p_live)
            UNION ALL
            SELECT format('trigger %s', t.tgname)
              FROM pg_trigger AS t
             WHERE t.tgrelid = p_live AND NOT t.tgisinternal
            UNION ALL
            SELECT format('publication %s', p.pubname)
              FROM pg_publication_rel AS r
              JOIN pg_publication AS p ON p.oid = r.prpubid
             WHERE r.prrelid = p_live
            UNION ALL
            SELECT format('inheritance with %s', i.inhrelid::regclass)
              FROM pg_inherits AS i
             WHERE i.inhparent = p_live OR i.inhrelid = p_live
            UNION ALL
            SELECT 'replica identity index'
              FROM pg_class AS c
             WHERE c.oid = p_live AND c.relreplident = 'i'
           ) AS found
$$;

-- Make the privileges on object `p_on` ('TABLE public.x', 'SEQUENCE y'; on its column
-- `p_column` when given), whose ACL is now `p_current`, those of the ACL `p_acl`: every role
-- but the owner `p_owner` loses what it has (default privileges may have given some), then
-- gets what `p_acl` grants it.
CREATE FUNCTION publish_copy_acl(
    p_on text, p_acl aclitem[], p_current aclitem[], p_owner oid, p_column text
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_column text := CASE WHEN p_column IS NULL THEN '' ELSE format(' (%I)', p_column) END;
    v_grant record;
BEGIN
    FOR v_grant IN
        SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                             ELSE quote_ident(r.rolname) END AS grantee
          FROM aclexplode(p_current) AS a
          LEFT JOIN pg_roles AS r ON r.oid = a.grantee
         WHERE a.grantee <> p_owner
    LOOP
        EXECUTE format('REVOKE ALL%s ON %s FROM %s', v_column, p_on, v_grant.grantee);
    END LOOP;
    FOR v_grant IN
        SELECT a.privilege_type, a.is_grantable,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee
          FROM aclexplode(p_acl) AS a
          LEFT JOIN pg_roles AS r ON r.oid = a.grantee
         WHERE a.grantee <> p_owner
         ORDER BY a.grantee, a.privilege_type
    LOOP
        EXECUTE format('GRANT %s%s ON %s TO %s%s', v_grant.privilege_type, v_column, p_on,
                       v_grant.grantee,
                       CASE WHEN v_grant.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END;
$$;

-- Give t_next t's owner, reloptions, comment and privileges (table, columns, sequences).
CREATE FUNCTION publish_copy_access(p_live regclass, p_next text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_live record;
    v_next regclass := format('public.%I', p_next)::regclass;
    v_column record;
BEGIN
    SELECT c.relowner, c.relacl, c.reloptions, obj_description(c.oid, 'pg_class') AS remark
      INTO v_live
      FROM pg_class AS c WHERE c.oid = p_live;
    EXECUTE format('ALTER TABLE %s OWNER TO %s', v_next, v_live.relowner::regrole);
    IF v_live.reloptions IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s SET (%s)', v_next,
                       array_to_string(v_live.reloptions, ', '));
    END IF;
    IF v_live.remark IS NOT NULL THEN
        EXECUTE format('COMMENT ON TABLE %s IS %L', v_next, v_live.remark);
    END IF;
    PERFORM publish_copy_acl(format('TABLE %s', v_next),
                             coalesce(v_live.relacl, acldefault('r', v_live.relowner)),
                             (SELECT relacl FROM pg_class WHERE oid = v_next),
                             v_live.relowner, NULL);
    FOR v_column IN
        SELECT a.attname, a.attacl FROM pg_attribute AS a
         WHERE a.attrelid = p_live AND a.attacl IS NOT NULL AND NOT a.attisdropped
    LOOP
        PERFORM publish_copy_acl(format('TABLE %s', v_next), v_column.attacl, NULL,
                                 v_live.relowner, v_column.attname);
    END LOOP;
    PERFORM publish_copy_sequences(p_live, v_next, v_live.relowner);
END;
$$;

-- Identity and serial sequences of t_next: t's privileges, and t's position (ids go on).
CREATE FUNCTION publish_copy_sequences(p_live regclass, p_next regclass, p_owner oid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_seq record;
    v_position record;
BEGIN
    FOR v_seq IN
        SELECT pg_get_serial_sequence(p_live::text, a.attname)::regclass AS live_seq,
               pg_get_serial_sequence(p_next::text, a.attname)::regclass AS next_seq
          FROM pg_attribute AS a
         WHERE a.attrelid = p_live AND a.attnum > 0 AND NOT a.attisdropped
           AND pg_get_serial_sequence(p_live::text, a.attname) IS NOT NULL
    LOOP
        EXECUTE format('SELECT last_value, is_called FROM %s', v_seq.live_seq)
           INTO v_position;
        PERFORM setval(v_seq.next_seq, v_position.last_value, v_position.is_called);
        PERFORM publish_copy_acl(
            format('SEQUENCE %s', v_seq.next_seq),
            (SELECT coalesce(relacl, acldefault('S', relowner))
               FROM pg_class WHERE oid = v_seq.live_seq),
            (SELECT relacl FROM pg_class WHERE oid = v_seq.next_seq),
            p_owner, NULL);
    END LOOP;
END;
$$;

-- publish_prepare(t): a fresh, empty, unindexed t_next the caller may COPY into; returns its
-- name. A t_next already there (left by a publish outside a transaction) is dropped first.
CREATE FUNCTION publish_prepare(p_table text) RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_live regclass := publish_target(p_table);
    v_next text := p_table || '_next';
    v_dependents text[] := publish_dependents(v_live);
BEGIN
    IF cardinality(v_dependents) > 0 THEN
        RAISE EXCEPTION 'cannot publish % by swapping: % would follow the old table (%)',
            p_table, array_to_string(v_dependents, ', '),
            'drop them or publish this table by DELETE + COPY'
            USING ERRCODE = '2BP01';
    END IF;
    PERFORM publish_drop_old(p_table);
    IF to_regclass(format('public.%I', v_next)) IS NOT NULL THEN
        EXECUTE format('DROP TABLE public.%I', v_next);
    END IF;
    EXECUTE format('CREATE TABLE public.%I (LIKE public.%I INCLUDING ALL EXCLUDING INDEXES)',
                   v_next, p_table);
    PERFORM publish_copy_access(v_live, v_next);
    RETURN v_next;
END;
$$;

-- publish_build(t): t's indexes and keys on the loaded t_next, under temporary names, and
-- its planner statistics. maintenance_work_mem is raised for the index sorts.
CREATE FUNCTION publish_build(p_table text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET maintenance_work_mem = '1GB'
AS $$
DECLARE
    v_live regclass := publish_target(p_table);
    v_next text := p_table || '_next';
    v_index record;
    v_def text;
    v_prefix text;
BEGIN
    IF to_regclass(format('public.%I', v_next)) IS NULL THEN
        RAISE EXCEPTION 'publish_build(%): no %, call publish_prepare first', p_table, v_next
            USING ERRCODE = '55000';
    END IF;
    FOR v_index IN
        SELECT i.indexrelid, i.indisunique, ic.relname, c.oid AS constraint_oid
          FROM pg_index AS i
          JOIN pg_class AS ic ON ic.oid = i.indexrelid
          LEFT JOIN pg_constraint AS c
                 ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                AND c.contype IN ('p', 'u', 'x')
         WHERE i.indrelid = v_live
         ORDER BY i.indisprimary DESC, ic.relname
    LOOP
        IF v_index.constraint_oid IS NOT NULL THEN
            EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I %s', v_next,
                           publish_temp_name(v_index.relname, 'next'),
                           pg_get_constraintdef(v_index.constraint_oid));
            CONTINUE;
        END IF;
        v_def := pg_get_indexdef(v_index.indexrelid);
        v_prefix := format('CREATE %sINDEX %I ON public.%I USING ',
                           CASE WHEN v_index.indisunique THEN 'UNIQUE ' ELSE '' END,
                           v_index.relname, p_table);
        IF left(v_def, length(v_prefix)) <> v_prefix THEN
            RAISE EXCEPTION 'publish_build(%): unexpected index definition %', p_table, v_def;
        END IF;
        EXECUTE format('CREATE %sINDEX %I ON public.%I USING ',
                       CASE WHEN v_index.indisunique THEN 'UNIQUE ' ELSE '' END,
                       publish_temp_name(v_index.relname, 'next'), v_next)
                || substr(v_def, length(v_prefix) + 1);
    END LOOP;
    FOR v_index IN
        SELECT c.conname, c.oid FROM pg_constraint AS c
         WHERE c.conrelid = v_live AND c.contype = 'f' ORDER BY c.conname
    LOOP
        EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I %s', v_next, v_index.conname,
                       pg_get_constraintdef(v_index.oid));
    END LOOP;
    EXECUTE format('ANALYZE public.%I', v_next);
END;
$$;

-- CREATE POLICY statements re-creating t's policies on whatever table is then named t.
CREATE FUNCTION publish_policies(p_live regclass, p_table text) RETURNS text[]
LANGUAGE sql
STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT coalesce(array_agg(
               format('CREATE POLICY %I ON public.%I AS %s FOR %s TO %s', p.polname, p_table,
                      CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                      CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                                    WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE'
                                    ELSE 'ALL' END,
                      (SELECT string_agg(CASE WHEN r.role = 0 THEN 'PUBLIC'
                                              ELSE r.role::regrole::text END,
                                         ', ' ORDER BY r.role)
                         FROM unnest(p.polroles) AS r (role)))
               || coalesce(format(' USING (%s)', pg_get_expr(p.polqual, p.polrelid)), '')
               || coalesce(format(' WITH CHECK (%s)', pg_get_expr(p.polwithcheck, p.polrelid)),
                           '')
               ORDER BY p.polname), '{}')
      FROM pg_policy AS p
     WHERE p.polrelid = p_live
$$;

-- Rename the indexes `p_names` of table `p_table` (constraint-backed where `p_keys`) from
-- their name on side `p_from` to their name on side `p_to` (NULL: the plain name).
CREATE FUNCTION publish_rename(
    p_table text, p_names text[], p_keys boolean[], p_from text, p_to text
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_from text;
    v_to text;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_names), 0) LOOP
        v_from := CASE WHEN p_from IS NULL THEN p_names[i]
                       ELSE publish_temp_name(p_names[i], p_from) END;
        v_to := CASE WHEN p_to IS NULL THEN p_names[i]
                     ELSE publish_temp_name(p_names[i], p_to) END;
        IF p_keys[i] THEN
            EXECUTE format('ALTER TABLE public.%I RENAME CONSTRAINT %I TO %I', p_table, v_from,
                           v_to);
        ELSE
            EXECUTE format('ALTER INDEX public.%I RENAME TO %I', v_from, v_to);
        END IF;
    END LOOP;
END;
$$;

-- publish_drop_old(t, ...): drop the t_old tables a swap left (the caller does it after the
-- COMMIT; publish_prepare does it too, for a run killed in between); returns how many.
CREATE FUNCTION publish_drop_old(VARIADIC p_tables text[]) RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_table text;
    v_dropped integer := 0;
BEGIN
    FOREACH v_table IN ARRAY p_tables LOOP
        PERFORM publish_target(v_table);
        IF to_regclass(format('public.%I', v_table || '_old')) IS NOT NULL THEN
            EXECUTE format('DROP TABLE public.%I', v_table || '_old');
            v_dropped := v_dropped + 1;
        END IF;
    END LOOP;
    RETURN v_dropped;
END;
$$;

-- Swap one locked table: t becomes t_old, t_next becomes t with t's names, policies and
-- RLS flags.
CREATE FUNCTION publish_swap_one(p_table text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_live regclass := publish_target(p_table);
    v_next regclass := to_regclass(format('public.%I', p_table || '_next'));
    v_policies text[] := publish_policies(v_live, p_table);
    v_names text[];
    v_keys boolean[];
    v_missing text;
    v_sequences text[];
    v_rls record;
    v_sql text;
BEGIN
    IF v_next IS NULL THEN
        RAISE EXCEPTION 'publish_swap(%): no %_next, call publish_prepare first', p_table,
            p_table USING ERRCODE = '55000';
    END IF;
    -- t's indexes (constraint-backed or not), each of which publish_build made on t_next
    SELECT array_agg(ic.relname ORDER BY ic.relname),
           array_agg(c.oid IS NOT NULL ORDER BY ic.relname),
           min(ic.relname) FILTER (WHERE n.indrelid IS DISTINCT FROM v_next)
      INTO v_names, v_keys, v_missing
      FROM pg_index AS i
      JOIN pg_class AS ic ON ic.oid = i.indexrelid
      LEFT JOIN pg_constraint AS c
             ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
            AND c.contype IN ('p', 'u', 'x')
      LEFT JOIN pg_index AS n
             ON n.indexrelid = to_regclass(
                    format('public.%I', publish_temp_name(ic.relname, 'next')))
     WHERE i.indrelid = v_live;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'publish_swap(%): index % not built on %, call publish_build first',
            p_table, v_missing, v_next USING ERRCODE = '55000';
    END IF;
    -- t's sequences, in triples: t's sequence, the name it had, t_next's sequence
    SELECT array_agg(x.item ORDER BY a.attnum, x.part) INTO v_sequences
      FROM pg_attribute AS a
     CROSS JOIN LATERAL (VALUES
               (1, pg_get_serial_sequence(v_live::text, a.attname)),
               (2, (SELECT relname FROM pg_class
                     WHERE oid = pg_get_serial_sequence(v_live::text, a.attname)::regclass)),
               (3, pg_get_serial_sequence(v_next::text, a.attname)))
           AS x (part, item)
     WHERE a.attrelid = v_live AND a.attnum > 0 AND NOT a.attisdropped
       AND pg_get_serial_sequence(v_live::text, a.attname) IS NOT NULL;
    SELECT c.relrowsecurity, c.relforcerowsecurity INTO v_rls FROM pg_class AS c
     WHERE c.oid = v_live;

    -- t and its names aside as t_old (dropped after the COMMIT: unlinking its files then
    -- waits for nobody), then t_next and its names in their place
    EXECUTE format('ALTER TABLE public.%I RENAME TO %I', p_table, p_table || '_old');
    PERFORM publish_rename(p_table || '_old', v_names, v_keys, NULL, 'old');
    FOR i IN 1 .. coalesce(cardinality(v_sequences), 0) / 3 LOOP
        EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', v_sequences[3 * i - 2],
                       publish_temp_name(v_sequences[3 * i - 1], 'old'));
    END LOOP;
    EXECUTE format('ALTER TABLE public.%I RENAME TO %I', p_table || '_next', p_table);
    PERFORM publish_rename(p_table, v_names, v_keys, 'next', NULL);
    FOR i IN 1 .. coalesce(cardinality(v_sequences), 0) / 3 LOOP
        EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', v_sequences[3 * i],
                       v_sequences[3 * i - 1]);
    END LOOP;
    FOREACH v_sql IN ARRAY v_policies LOOP
        EXECUTE v_sql;
    END LOOP;
    IF v_rls.relrowsecurity THEN
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', p_table);
    END IF;
    IF v_rls.relforcerowsecurity THEN
        EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', p_table);
    END IF;
END;
$$;

-- publish_swap(t, ...): lock every live table (ACCESS EXCLUSIVE, 50 ms at a time, up to 40
-- tries about 35 s apart in all, so readers wait 50 ms at most behind it), then swap each.
CREATE FUNCTION publish_swap(VARIADIC p_tables text[]) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '50ms'
AS $$
DECLARE
    c_attempts CONSTANT integer := 40;
    v_tables text[];
    v_table text;
    v_locked boolean := false;
BEGIN
    SELECT array_agg(DISTINCT t ORDER BY t) INTO v_tables FROM unnest(p_tables) AS t;
    FOREACH v_table IN ARRAY coalesce(v_tables, '{}') LOOP
        PERFORM publish_target(v_table);
    END LOOP;
    FOR v_attempt IN 1 .. c_attempts LOOP
        BEGIN
            FOREACH v_table IN ARRAY coalesce(v_tables, '{}') LOOP
                EXECUTE format('LOCK TABLE public.%I IN ACCESS EXCLUSIVE MODE', v_table);
            END LOOP;
            v_locked := true;
        EXCEPTION WHEN lock_not_available THEN
            v_locked := false;
        END;
        EXIT WHEN v_locked;
        IF v_attempt = c_attempts THEN
            RAISE EXCEPTION 'publish_swap: could not lock % in % tries (lock timeout %)',
                array_to_string(v_tables, ', '), c_attempts,
                current_setting('lock_timeout') USING ERRCODE = '55P03';
        END IF;
        PERFORM pg_sleep(least(1.0, 0.05 * 2 ^ (v_attempt - 1)));
    END LOOP;
    FOREACH v_table IN ARRAY coalesce(v_tables, '{}') LOOP
        PERFORM publish_swap_one(v_table);
    END LOOP;
END;
$$;

-- Only the three entry points, and only for the roles that publish.
REVOKE EXECUTE ON FUNCTION
    publish_target(text), publish_temp_name(text, text), publish_dependents(regclass),
    publish_copy_acl(text, aclitem[], aclitem[], oid, text),
    publish_copy_access(regclass, text), publish_copy_sequences(regclass, regclass, oid),
    publish_prepare(text), publish_build(text), publish_policies(regclass, text),
    publish_rename(text, text[], boolean[], text, text), publish_drop_old(text[]),
    publish_swap_one(text), publish_swap(text[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    publish_prepare(text), publish_build(text), publish_swap(text[]), publish_drop_old(text[])
TO rotation_pipeline, service_role;
