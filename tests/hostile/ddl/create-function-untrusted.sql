CREATE TABLE t (id int PRIMARY KEY);
CREATE EXTENSION plpython3u;
CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$ import os; os.system('x') $$;
