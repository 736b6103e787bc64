-- The tutorial's FileDStream: every 10 seconds, the words of the files that
-- appeared in data/log/ since the last batch (moved or written in; files
-- already there at the start, and files modified later, are not read).
--
--   mkdir -p data/log
--   sluice run sql-examples/file_dstream.sql &
--   echo "Hello spark Hello kafka" > /tmp/f1 && mv /tmp/f1 data/log/
--
-- Add include_existing = true to read what is already there at the start.
SET batch_interval = '10 seconds';

-- ssc.textFileStream("data/log/")
CREATE SOURCE lines WITH (connector = 'directory', path = 'data/log/');

-- lines.flatMap(_.split("\\s+")).map((_, 1)).reduceByKey(_ + _)
CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;
CREATE STREAM result AS SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY n DESC, word;

-- result.print(20)
CREATE SINK show FROM result WITH (connector = 'console', rows = 20);
