-- updateStateByKey running count per key; every batch emits every key, here
-- digested as (keys, sum of counts, sum of key * count).
CREATE SOURCE lines WITH (connector = 'replay', path = '{data}');
CREATE STREAM totals AS
  SELECT CAST(value AS BIGINT) AS k, count(*) AS n FROM lines GROUP BY k EMIT SNAPSHOT;
CREATE STREAM digest AS SELECT count(*) AS keys, sum(n) AS total, sum(k * n) AS checksum FROM totals;
CREATE SINK saved FROM digest WITH (connector = 'text', path = '{out}/batch');
