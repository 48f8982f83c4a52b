CREATE TABLE pg_catalog.evil (id int);
