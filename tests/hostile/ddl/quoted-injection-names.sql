CREATE TABLE "x""; DROP TABLE y; --" (
  id bigint PRIMARY KEY,
  "class" integer,
  "import" text,
  "def" text
);
