-- BlackListFilter: drop the lines whose word is blacklisted with flag = true,
-- done the tutorial's three ways, over a constant source (ConstantInputDStream)
-- that yields the same 13 lines every batch: "0 Hello", "1 World", ...
--
--   sluice run --clock simulated --batches 2 sql-examples/blacklist_filter.sql
SET batch_interval = '1 second';

-- val blackList = Array(("spark", true), ("scala", false))
CREATE TABLE blacklist (word TEXT, flag BOOLEAN) AS VALUES ('spark', true), ('scala', false);

-- "Hello World Hello scala Hadoop Hello spark kafka hive zookeeper hbase flume sqoop"
--   .split("\\s+").zipWithIndex.map{case (k, v) => s"$v $k"}
CREATE TABLE lines_data AS
  SELECT (idx - 1) || ' ' || word AS value
  FROM (SELECT word, row_number() OVER () AS idx
        FROM (SELECT unnest(string_to_array(
          'Hello World Hello scala Hadoop Hello spark kafka hive zookeeper hbase flume sqoop', ' ')) AS word));

CREATE SOURCE lines WITH (connector = 'constant', table = 'lines_data');

-- 1. RDD leftOuterJoin: (word, line) left outer join blacklist, keep !flag.getOrElse(false)
CREATE STREAM way1 AS
  SELECT l.value
  FROM lines l LEFT OUTER JOIN blacklist b ON split_part(l.value, ' ', 2) = b.word
  WHERE NOT coalesce(b.flag, false)
  ORDER BY CAST(split_part(l.value, ' ', 1) AS INT);

-- 2. SQL join: toDF("word", "line") left_outer join, filter("flag is null or flag = false")
CREATE STREAM pairs AS SELECT split_part(value, ' ', 2) AS word, value AS line FROM lines;
CREATE STREAM way2 AS
  SELECT p.line
  FROM pairs p LEFT OUTER JOIN blacklist b ON p.word = b.word
  WHERE b.flag IS NULL OR b.flag = false
  ORDER BY CAST(split_part(p.line, ' ', 1) AS INT);

-- 3. plain filter against the blacklisted words
CREATE STREAM way3 AS
  SELECT value
  FROM lines
  WHERE lower(split_part(value, ' ', 2)) NOT IN ('spark');

-- print(20), three times
CREATE SINK show1 FROM way1 WITH (connector = 'console', rows = 20);
CREATE SINK show2 FROM way2 WITH (connector = 'console', rows = 20);
CREATE SINK show3 FROM way3 WITH (connector = 'console', rows = 20);
