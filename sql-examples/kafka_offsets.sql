-- The tutorial's KafkaDStream with its offsets: each batch prints, per
-- partition, the range of offsets it read (rdd.asInstanceOf[HasOffsetRanges]
-- .offsetRanges), and once every sink has the batch its offsets are
-- committed to the consumer group (enable.auto.commit off, commitAsync
-- after the output). A restart goes on from the group's committed offsets.
-- Runs until Ctrl-C.
--
-- With a Kafka broker on 127.0.0.1:9092 and records in topicB (README, "Kafka"):
--   sluice run sql-examples/kafka_offsets.sql
SET batch_interval = '5 seconds';

CREATE SOURCE topicB WITH (
  connector = 'kafka',
  brokers = '127.0.0.1:9092',
  topics = 'topicB',
  group_id = 'groupA',
  starting_offsets = 'earliest',
  -- stream.asInstanceOf[CanCommitOffsets].commitAsync(offsetRanges)
  offset_store = 'kafka'
);

-- println(s"rdd.count = ${rdd.count()}; time = $time")
CREATE STREAM counts AS
  SELECT 'rdd.count = ' || count(*) || '; time = ' || CAST(max(batch_time) AS BIGINT) || ' ms' AS line
  FROM topicB HAVING count(*) > 0;
CREATE SINK show_count FROM counts WITH (connector = 'console');

-- println(s"${range.topic} ${range.partition} ${range.fromOffset}-${range.untilOffset}")
CREATE STREAM ranges AS
  SELECT topic || ' ' || partition || ' ' || from_offset || '-' || until_offset AS range
  FROM offsets(topicB) ORDER BY topic, partition;
CREATE SINK show_ranges FROM ranges WITH (connector = 'console');
