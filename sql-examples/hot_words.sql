-- The tutorial's HotWordStats: every 10 seconds, how often each word came in
-- over the last 20 seconds (batch interval 5 s), on the embedded 'words'
-- generator (the tutorial's SocketLikeNC vocabulary, 2 words per line).
-- Runs until Ctrl-C; add --clock simulated --batches 8 to run 40 s of
-- batches back to back.
--
--   sluice run sql-examples/hot_words.sql
--
-- Spark's two versions -- reduceByKeyAndWindow(_ + _, Seconds(20), Seconds(10))
-- and the "more efficient" one with the inverse (_ + _, _ - _) -- are one query
-- here: sluice derives the inverse of count(*) itself, so a slide adds the
-- entering batches and subtracts the leaving ones. Unlike Spark without a
-- filterFunc, a word no longer in the window is dropped, not kept at 0.
-- `EXPLAIN hot_words;` says how each aggregate is kept.
SET batch_interval = '5 seconds';
-- ssc.checkpoint("data/checkpoint"): killed or stopped, the job goes on
-- where it was, windows and state included; remove the directory to start over.
SET checkpoint = 'target/sql-examples/hot_words/checkpoint';

CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 10, seed = 7);

-- lines.flatMap(_.split("\\s+"))
CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;

-- .map((_, 1)).reduceByKeyAndWindow(_ + _, _ - _, Seconds(20), Seconds(10))
CREATE STREAM hot_words AS
  SELECT window_end, word, count(*) AS n
  FROM window(words, '20 seconds', '10 seconds')
  GROUP BY word
  ORDER BY n DESC, word;

-- workCount.print()
CREATE SINK show FROM hot_words WITH (connector = 'console');
