-- Two tightenings found by probing (issue: reliability and security, second pass):
--
-- 1. `authenticated` held USAGE and SELECT on every sequence (0006): any signed-in user could
--    read table sizes (users_id_seq's last_value) and call nextval on jobs_id_seq. Its inserts
--    (favorites, user_collections, user_collection_items, user_follows, feedback) fill identity
--    columns, which need no privilege on their sequence: it now holds none.
--
-- 2. A published table's t_next (0012) had t's grants but not its Row Level Security until
--    the swap: a later grant to a role without a `USING (true)` policy would have opened it.
--    publish_secure(t) gives t_next t's RLS flags and policies; the pipeline calls it right
--    after its COPY, in the same transaction, so no other session ever sees t_next without
--    them. publish_policies now leaves out the policies a table already has, so the swap
--    (publish_swap_one, which re-creates t's policies on the swapped-in table) finds nothing
--    left to create.

REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM authenticated;

-- CREATE POLICY statements giving table p_table the policies of p_live it lacks.
CREATE OR REPLACE FUNCTION publish_policies(p_live regclass, p_table text) RETURNS text[]
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
       AND NOT EXISTS (SELECT 1 FROM pg_policy AS q
                        WHERE q.polrelid = to_regclass(format('public.%I', p_table))
                          AND q.polname = p.polname)
$$;

-- publish_secure(t): t_next gets t's Row Level Security flags and policies.
CREATE FUNCTION publish_secure(p_table text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_live regclass := publish_target(p_table);
    v_next regclass := publish_next(p_table);
    v_rls record;
    v_sql text;
BEGIN
    SELECT c.relrowsecurity, c.relforcerowsecurity INTO v_rls FROM pg_class AS c
     WHERE c.oid = v_live;
    FOREACH v_sql IN ARRAY publish_policies(v_live, p_table || '_next') LOOP
        EXECUTE v_sql;
    END LOOP;
    IF v_rls.relrowsecurity THEN
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v_next);
    END IF;
    IF v_rls.relforcerowsecurity THEN
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', v_next);
    END IF;
END;
$$;

REVOKE EXECUTE ON FUNCTION publish_secure(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION publish_secure(text) TO rotation_pipeline, service_role;
