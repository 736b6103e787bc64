-- The tutorial's KafkaDStream3: offsets kept in Redis. At start, each
-- partition's next offset is read from the hash kafka:topic:<topic>:groupC
-- (field = partition, value = offset; HGETALL); after every batch whose
-- output is done, the batch's until-offsets are written back with one HSET
-- per topic. A partition Redis does not know starts at the earliest offset.
-- Non-empty batches print their count and their offset ranges. Runs until
-- Ctrl-C.
--
-- With a Kafka broker on 127.0.0.1:9092, topics topic_1 and topic_2, and a
-- Redis server on 127.0.0.1:6379 (README, "Kafka"):
--   sluice run sql-examples/kafka_redis_offsets.sql
--   redis-cli HGETALL kafka:topic:topic_1:groupC
SET batch_interval = '5 seconds';

CREATE SOURCE topics WITH (
  connector = 'kafka',
  brokers = '127.0.0.1:9092',
  topics = 'topic_2,topic_1',
  group_id = 'groupC',
  starting_offsets = 'earliest',
  offset_store = 'redis',
  redis = 'redis://127.0.0.1:6379'
);

-- if (!rdd.isEmpty()) { println(s"rdd.count = ..."); ... }
CREATE STREAM counts AS
  SELECT 'rdd.count = ' || count(*) || '; time = ' || CAST(max(batch_time) AS BIGINT) || ' ms' AS line
  FROM topics HAVING count(*) > 0;
CREATE SINK show_count FROM counts WITH (connector = 'console');

-- rdd.foreachPartition { println(s"${range.topic} ${range.partition} ${range.fromOffset}-${range.untilOffset}") }
CREATE STREAM ranges AS
  SELECT topic || ' ' || partition || ' ' || from_offset || '-' || until_offset AS range
  FROM offsets(topics)
  WHERE (SELECT count(*) FROM topics) > 0
  ORDER BY topic, partition;
CREATE SINK show_ranges FROM ranges WITH (connector = 'console');
