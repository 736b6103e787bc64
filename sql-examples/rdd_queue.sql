-- RDDDStream (queueStream): five batches of the numbers 1..100 * i,
-- counted by value % 10 each batch. Spark pushes an RDD per second into a queue;
-- here each file of data/rdd_queue is one batch (the 'replay' source).
--
--   sluice run --clock simulated --batches 5 sql-examples/rdd_queue.sql
--
-- Run from the repository root (the replay path is relative to the working directory).
SET batch_interval = '1 second';

CREATE SOURCE queue WITH (connector = 'replay', path = 'sql-examples/data/rdd_queue');

-- queueDStream.map(elem => (elem % 10, 1)).reduceByKey(_ + _)
CREATE STREAM result AS
  SELECT CAST(value AS BIGINT) % 10 AS key, count(*) AS n
  FROM queue
  GROUP BY key
  ORDER BY key;

-- result.print()
CREATE SINK show FROM result WITH (connector = 'console');
