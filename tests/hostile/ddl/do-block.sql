DO $$ BEGIN PERFORM pg_sleep(100); END $$;
