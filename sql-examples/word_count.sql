-- The tutorial's socket word count (FileDStream / SocketLikeNC), on the
-- embedded 'words' generator: each batch, 10 lines of 2 random words from the
-- tutorial's vocabulary. Runs until Ctrl-C; add --clock simulated --batches 3
-- to run three batches back to back.
--
--   sluice run sql-examples/word_count.sql
SET batch_interval = '1 second';

CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 10, seed = 1);

-- lines.flatMap(_.split("\\s+")).map((_, 1)).reduceByKey(_ + _)
CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;
CREATE STREAM counts AS SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY n DESC, word;

-- result.print(20)
CREATE SINK show FROM counts WITH (connector = 'console', rows = 20);
