
SET checkpoint = 'ck';
SET checkpoint_interval = '3 seconds';
CREATE SOURCE files WITH (connector = 'replay', path = 'in');
CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM files;
CREATE STREAM recent AS
  SELECT word, count(*) AS n FROM window(words, '3 seconds', '1 second') GROUP BY word ORDER BY word;
CREATE STREAM longer AS
  SELECT word, count(*) AS n, max(length(word)) AS longest
  FROM window(words, '4 seconds', '2 seconds') GROUP BY word ORDER BY word;
CREATE STREAM kinds AS SELECT count(DISTINCT word) AS kinds FROM window(words, '5 seconds', '1 second');
CREATE STREAM totals WITH (state_timeout = '3 seconds') AS
  SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY word EMIT CHANGES;
CREATE STREAM everything AS
  SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY word EMIT SNAPSHOT;
CREATE SINK a FROM recent WITH (connector = 'text', path = 'out/recent');
CREATE SINK b FROM longer WITH (connector = 'text', path = 'out/longer');
CREATE SINK c FROM kinds WITH (connector = 'text', path = 'out/kinds');
CREATE SINK d FROM totals WITH (connector = 'text', path = 'out/totals');
CREATE SINK e FROM everything WITH (connector = 'text', path = 'out/everything');
