-- The tutorial's BlackListFilter: (word, line) left outer join blacklist,
-- keep the lines whose flag is not true.
CREATE EXTERNAL TABLE blacklist (word TEXT, flag BOOLEAN) STORED AS CSV LOCATION '{blacklist}'
  OPTIONS ('format.has_header' 'false');
CREATE SOURCE lines WITH (connector = 'replay', path = '{data}');
CREATE STREAM kept AS
  SELECT l.value
  FROM lines l LEFT OUTER JOIN blacklist b ON split_part(l.value, ' ', 2) = b.word
  WHERE NOT coalesce(b.flag, false);
CREATE SINK saved FROM kept WITH (connector = 'text', path = '{out}/batch');
