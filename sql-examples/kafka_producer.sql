-- The tutorial's KafkaProducer: records with key = value = 1, 2, 3, ...
-- sent to topic topicB, 10 a second (the tutorial sleeps 100 ms between
-- sends). Each batch counts as written once the broker has acknowledged
-- every record. Runs until Ctrl-C; add --clock simulated --batches 3 to
-- send three batches (30 records) at once.
--
-- With a Kafka broker on 127.0.0.1:9092 and a topic topicB (README, "Kafka"):
--   sluice run sql-examples/kafka_producer.sql
SET batch_interval = '1 second';

-- for (i <- 1 to 1000000) { ...; Thread.sleep(100) }
CREATE SOURCE ticks WITH (connector = 'rate', rows_per_second = 10);
CREATE STREAM records AS
  SELECT CAST(value + 1 AS TEXT) AS key, CAST(value + 1 AS TEXT) AS value FROM ticks;

-- producer.send(new ProducerRecord(topic, i.toString, i.toString))
CREATE SINK to_kafka FROM records WITH (
  connector = 'kafka', brokers = '127.0.0.1:9092', topic = 'topicB');

-- println(s"i = $i")
CREATE STREAM sent AS SELECT 'i = ' || value AS line FROM records;
CREATE SINK show FROM sent WITH (connector = 'console', rows = 10);
