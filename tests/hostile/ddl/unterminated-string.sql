CREATE TABLE t (
  s text DEFAULT 'open
);
