CREATE TABLE t (
  id bigint PRIMARY KEY,
  "note
DELETE FROM t; --" text
);
