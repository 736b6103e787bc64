-- Word count per batch: lines.flatMap(_.split(" ")).map((_, 1)).reduceByKey(_ + _)
CREATE SOURCE lines WITH (connector = 'replay', path = '{data}');
CREATE STREAM counts AS
  SELECT word, count(*) AS n
  FROM (SELECT unnest(string_to_array(value, ' ')) AS word FROM lines)
  GROUP BY word;
CREATE SINK saved FROM counts WITH (connector = 'text', path = '{out}/batch');
