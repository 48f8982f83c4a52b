CREATE TABLE "orders
DROP TABLE users; --" (
  id bigint PRIMARY KEY
);
