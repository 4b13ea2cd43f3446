-- The two SECURITY DEFINER functions of 0005 and 0009 search pg_temp last. Their search_path
-- named pg_catalog and public only, and PostgreSQL then searches the caller's temporary
-- schema FIRST for tables: a caller's temporary table named user_collections would take the
-- trigger's UPDATE (the collection counts of public.user_collections silently not kept), and
-- one named like a catalogue view could feed sync_identity_sequences the sequences to move,
-- with their owner's rights. "Writing SECURITY DEFINER Functions Safely" in PostgreSQL's
-- manual: pg_temp last, as the publish_* functions of 0012 have it.

ALTER FUNCTION update_collection_item_count() SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION sync_identity_sequences() SET search_path = pg_catalog, public, pg_temp;
