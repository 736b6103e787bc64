-- The tutorial's StateTracker2 (mapWithState + stateSnapshots): 1-second
-- batches, each word's running count. `changed` is mapWithState's own
-- output: only the words that came in this batch (once per word; Spark emits
-- one record per incoming value, so a word can repeat within a batch).
-- `snapshot` is .stateSnapshots(): every word's current count. On the
-- embedded 'words' generator; runs until Ctrl-C, or add --clock simulated
-- --batches 3.
--
--   sluice run sql-examples/state_tracker2.sql
SET batch_interval = '1 second';
-- ssc.checkpoint("data/checkpoint"): killed or stopped, the job goes on
-- where it was, windows and state included; remove the directory to start over.
SET checkpoint = 'target/sql-examples/state_tracker2/checkpoint';

CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 5, seed = 5);

-- lines.flatMap(_.split("\\s+")).map((_, 1))
CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;

-- mapFuc: sum = value + state.getOption().getOrElse(0); state.update(sum); (key, sum)
CREATE STREAM changed AS
  SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY word EMIT CHANGES;

-- .stateSnapshots()
CREATE STREAM snapshot AS
  SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY word EMIT SNAPSHOT;

-- resultDS.print(100); resultDS.saveAsTextFiles("data/output2/")
CREATE SINK show FROM snapshot WITH (connector = 'console', rows = 100);
CREATE SINK saved FROM snapshot WITH (connector = 'text', path = 'target/sql-examples/state_tracker2/output');
CREATE SINK changes FROM changed WITH (connector = 'console', rows = 100);
