-- The tutorial's word count, archived: each batch's counts go to one Parquet
-- file, target/sql-examples/parquet_archive/counts/batch-<ms>.parquet,
-- written whole (a reader never sees half a file) and named by batch time
-- (running a batch again replaces its file). Runs until Ctrl-C; add
-- --clock simulated --batches 3 to run three batches back to back.
--
--   sluice run sql-examples/parquet_archive.sql
--
-- Read the archive back with any Parquet reader, or in the sluice REPL:
--   CREATE EXTERNAL TABLE archive STORED AS PARQUET
--     LOCATION 'target/sql-examples/parquet_archive/counts/';
--   SELECT word, sum(n) FROM archive GROUP BY word ORDER BY 2 DESC;
-- The path may be an object store URL: 's3://bucket/counts' (credentials and
-- AWS_ENDPOINT from the environment), 'memory://...', 'file:///...'.
SET batch_interval = '1 second';

CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 10, seed = 1);

CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;
CREATE STREAM counts AS SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY n DESC, word;

CREATE SINK show FROM counts WITH (connector = 'console', rows = 20);
CREATE SINK archive FROM counts WITH (connector = 'parquet', path = 'target/sql-examples/parquet_archive/counts');
