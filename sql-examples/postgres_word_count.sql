-- Running word totals kept in PostgreSQL (the tutorial's foreachRDD that
-- writes to a database, with connections per batch and never per row).
-- Each batch upserts the words it changed into word_totals through COPY and
-- INSERT ... ON CONFLICT (key = 'word'), in one transaction, so a batch run
-- twice leaves the table as once. Runs until Ctrl-C; add --clock simulated
-- --batches 3 to run three batches back to back.
--
-- Once, with a PostgreSQL server on 127.0.0.1:5432 and a role 'sluice':
--   createdb sluice
--   psql sluice -c 'CREATE TABLE word_totals (word TEXT PRIMARY KEY, n BIGINT NOT NULL)'
-- then
--   sluice run sql-examples/postgres_word_count.sql
--   psql sluice -c 'SELECT * FROM word_totals ORDER BY n DESC'
SET batch_interval = '1 second';

CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 10, seed = 1);

CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;

-- mapWithState: each batch, the words it touched with their new totals.
CREATE STREAM totals AS SELECT word, count(*) AS n FROM words GROUP BY word EMIT CHANGES;

CREATE SINK show FROM totals WITH (connector = 'console');
CREATE SINK db FROM totals WITH (
  connector = 'postgres',
  url = 'postgres://sluice@127.0.0.1:5432/sluice',
  table = 'word_totals',
  key = 'word'
);
