-- reduceByKeyAndWindow(_ + _, _ - _, Seconds(30), Seconds(1)) over (word, 1):
-- the inverse is derived (panes subtracted), keys left with no rows dropped.
CREATE SOURCE lines WITH (connector = 'replay', path = '{data}');
CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;
CREATE STREAM counts AS
  SELECT word, count(*) AS n FROM window(words, '30 seconds') GROUP BY word;
CREATE SINK saved FROM counts WITH (connector = 'text', path = '{out}/batch');
