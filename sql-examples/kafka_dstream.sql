-- The tutorial's KafkaDStream: a direct stream over topic topicB, 5-second
-- batches, printing how many records each non-empty batch read. Each batch
-- is, per partition, the offsets between where the last one stopped and
-- the partition's end when the batch was cut. Group groupA, from the
-- earliest offset, no automatic commits (offsets are not stored anywhere:
-- see kafka_offsets.sql and kafka_redis_offsets.sql). Runs until Ctrl-C.
--
-- With a Kafka broker on 127.0.0.1:9092 and records in topicB (README, "Kafka"):
--   sluice run sql-examples/kafka_dstream.sql
SET batch_interval = '5 seconds';

-- KafkaUtils.createDirectStream(ssc, PreferConsistent, Subscribe(Array("topicB"), kafkaParams))
CREATE SOURCE topicB WITH (
  connector = 'kafka',
  brokers = '127.0.0.1:9092',
  topics = 'topicB',
  group_id = 'groupA',
  starting_offsets = 'earliest'
);

-- if (!rdd.isEmpty()) println(s"rdd.count = ${rdd.count()}; time = $time")
CREATE STREAM counts AS
  SELECT 'rdd.count = ' || count(*) || '; time = ' || CAST(max(batch_time) AS BIGINT) || ' ms' AS line
  FROM topicB HAVING count(*) > 0;
CREATE SINK show FROM counts WITH (connector = 'console');
