-- The role the worker's COPY sessions run as (`-c role=...` in their start-up options): it may
-- read what an export's SELECT reads and nothing else, so that no SELECT the compiler produces
-- can change data, whatever the session's read-only setting says.
--
-- Roles belong to the whole cluster, grants to one database. Creating the role is idempotent and
-- tolerates other databases of the same cluster migrating at the same moment (the migration lock
-- is per database). A migrating user without CREATEROLE cannot make it: the migration then
-- leaves it out, and the worker, which checks at start whether it can take the role, keeps its
-- COPY sessions read-only by default and logs a warning.
DO $$
BEGIN
  IF to_regrole('analytics_export_reader') IS NULL THEN
    BEGIN
      CREATE ROLE analytics_export_reader NOLOGIN;
    EXCEPTION
      -- Made meanwhile by another database's migration.
      WHEN duplicate_object OR unique_violation THEN NULL;
      WHEN insufficient_privilege THEN
        RAISE NOTICE 'role analytics_export_reader not created (the migrating user lacks CREATEROLE): COPY sessions stay read-only by default';
        RETURN;
    END;
  END IF;

  -- The connecting user must be able to SET ROLE to it (a superuser always can; from Postgres 16
  -- the creator of a role holds it with ADMIN but without SET until granted).
  IF NOT pg_has_role(current_user, 'analytics_export_reader',
                     CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END) THEN
    BEGIN
      EXECUTE format('GRANT analytics_export_reader TO %I', current_user);
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN NULL;
      WHEN insufficient_privilege OR invalid_grant_operation THEN
        RAISE NOTICE 'role analytics_export_reader cannot be granted to %: COPY sessions stay read-only by default', current_user;
    END;
  END IF;

  -- What the compiled SELECT reads: readings, devices, spaces, the metric catalogue, and what the
  -- visibility functions (EXECUTE is public) read about users, customers and partners.
  GRANT USAGE ON SCHEMA public TO analytics_export_reader;
  GRANT SELECT ON devices, device_readings, spaces, customers, users, partners, metrics TO analytics_export_reader;
END
$$;
