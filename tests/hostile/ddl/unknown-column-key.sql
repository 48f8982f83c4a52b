CREATE TABLE t (id int, PRIMARY KEY (nope));
