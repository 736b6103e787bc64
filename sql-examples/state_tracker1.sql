-- The tutorial's StateTracker1 (updateStateByKey): every 5 seconds, each
-- word's count over the whole stream so far -- every word, even one with no
-- new rows this batch -- printed and saved with saveAsTextFiles, on the
-- embedded 'words' generator. Runs until Ctrl-C; add --clock simulated
-- --batches 4 to run four batches back to back.
--
--   sluice run sql-examples/state_tracker1.sql
--
-- updateFunc (values.sum + state.getOrElse(0)) is count(*) kept running:
-- any aggregate works, and state is Arrow arrays, not an object per key.
SET batch_interval = '5 seconds';
-- ssc.checkpoint("data/checkpoint"): killed or stopped, the job goes on
-- where it was, windows and state included; remove the directory to start over.
SET checkpoint = 'target/sql-examples/state_tracker1/checkpoint';

CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 10, seed = 3);

-- lines.flatMap(_.split("\\s+")).map((_, 1))
CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;

-- .updateStateByKey[Int](updateFunc)
CREATE STREAM totals AS
  SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY word EMIT SNAPSHOT;

-- resultDS.print(); resultDS.saveAsTextFiles("data/output/")
CREATE SINK show FROM totals WITH (connector = 'console');
CREATE SINK saved FROM totals WITH (connector = 'text', path = 'target/sql-examples/state_tracker1/output');
