-- The tutorial's socket word count, over a real socket as in the tutorial:
-- ssc.socketTextStream("localhost", 9999) fed by SocketLikeNC. First start
-- the built-in word server (or `nc -lk 9999` and type lines), then the job:
--
--   sluice tools socket-words --port 9999 &
--   sluice run sql-examples/socket_word_count.sql
--
-- Each 5-second batch counts the words of the lines received during it. The
-- source reconnects by itself if the server is not up yet or restarts.
SET batch_interval = '5 seconds';

-- ssc.socketTextStream("localhost", 9999)
CREATE SOURCE lines WITH (connector = 'socket', host = 'localhost', port = 9999);

-- lines.flatMap(_.split("\\s+")).map((_, 1)).reduceByKey(_ + _)
CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;
CREATE STREAM counts AS SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY n DESC, word;

-- wordCounts.print()
CREATE SINK show FROM counts WITH (connector = 'console');
