//! Kafka as a user meets it from the command line, against a real broker
//! (tansu) and Redis on 127.0.0.1: the tutorial's Kafka programs as shipped
//! in `sql-examples/` (addresses swapped for the test servers), and a
//! checkpointed job killed with `kill -9` mid-stream that, restarted, has
//! written every record exactly once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{batches, stderr, stdout};

#[path = "../../sluice-connectors/tests/common/kafka_server.rs"]
mod kafka_server;
#[path = "../../sluice-connectors/tests/common/outside.rs"]
mod outside;
#[path = "../../sluice-connectors/tests/common/redis_server.rs"]
mod redis_server;

use kafka_server::KafkaServer;
use redis_server::RedisServer;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The example `name` as shipped, pointed at the test servers, in `dir`.
fn example(dir: &Path, name: &str, replace: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(repo_root().join("sql-examples").join(name)).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "{name} has {from}");
        text = text.replace(from, to);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn run(dir: &Path, batches: u64, script: &Path) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--clock", "simulated", "--batches"])
        .arg(batches.to_string())
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// The rows of every printed batch, in order.
fn printed(o: &Output) -> Vec<(i64, Vec<String>)> {
    batches(&stdout(o))
}

/// `topic partition from-until` lines as (topic, partition) -> (from, until).
fn ranges(lines: &[String]) -> BTreeMap<(String, i32), (i64, i64)> {
    lines
        .iter()
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            let (from, until) = parts[2].split_once('-').unwrap();
            (
                (parts[0].to_string(), parts[1].parse().unwrap()),
                (from.parse().unwrap(), until.parse().unwrap()),
            )
        })
        .collect()
}

#[test]
fn the_tutorials_kafka_programs_run_as_shipped() {
    let Some(kafka) = KafkaServer::start() else {
        return;
    };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    kafka.create_topic("topicB", 2);
    kafka.create_topic("topic_1", 2);
    kafka.create_topic("topic_2", 1);
    let dir = tempfile::tempdir().unwrap();
    let brokers = kafka.brokers();
    let to_servers = [
        ("127.0.0.1:9092", brokers.as_str()),
        ("redis://127.0.0.1:6379", &redis.url()),
    ];
    let broker_only = &to_servers[..1];

    // KafkaProducer: 3 batches of 10 records, key = value = 1..30.
    let producer = example(dir.path(), "kafka_producer.sql", broker_only);
    let sent = printed(&run(dir.path(), 3, &producer));
    let lines: Vec<String> = sent.iter().flat_map(|(_, rows)| rows.clone()).collect();
    let expected: Vec<String> = (1..=30).map(|i| format!("i = {i}")).collect();
    assert_eq!(lines, expected);

    // KafkaDStream: all 30 in the first 5-second batch, nothing after.
    let dstream = example(dir.path(), "kafka_dstream.sql", broker_only);
    assert_eq!(
        printed(&run(dir.path(), 2, &dstream)),
        vec![
            (5000, vec!["rdd.count = 30; time = 5000 ms".to_string()]),
            (10000, vec![])
        ]
    );

    // With offsets: the ranges cover 0..30 over both partitions, and are
    // committed to the group: a second run reads nothing again.
    let with_offsets = example(dir.path(), "kafka_offsets.sql", broker_only);
    let first = printed(&run(dir.path(), 1, &with_offsets));
    assert_eq!(first[0].1, vec!["rdd.count = 30; time = 5000 ms"]);
    let read = ranges(&first[1].1);
    assert_eq!(read.len(), 2, "{read:?}");
    assert!(read.values().all(|(from, _)| *from == 0), "{read:?}");
    assert_eq!(read.values().map(|(f, u)| u - f).sum::<i64>(), 30);
    let again = printed(&run(dir.path(), 1, &with_offsets));
    assert_eq!(again[0].1, Vec::<String>::new(), "no count: nothing read");
    assert_eq!(
        ranges(&again[1].1),
        read.iter()
            .map(|(p, (_, until))| (p.clone(), (*until, *until)))
            .collect(),
        "from the committed offsets"
    );

    // KafkaDStream3: offsets in Redis; a second run starts where the hash says.
    let to_topic_1 = [
        ("127.0.0.1:9092", brokers.as_str()),
        ("topic = 'topicB'", "topic = 'topic_1'"),
    ];
    let producer_1 = example(dir.path(), "kafka_producer.sql", &to_topic_1);
    let redis_job = example(dir.path(), "kafka_redis_offsets.sql", &to_servers);
    run(dir.path(), 1, &producer_1);
    let first = printed(&run(dir.path(), 1, &redis_job));
    assert_eq!(first[0].1, vec!["rdd.count = 10; time = 5000 ms"]);
    let read = ranges(&first[1].1);
    assert_eq!(
        read.len(),
        3,
        "topic_1's two partitions and topic_2's: {read:?}"
    );
    let client = redis::Client::open(redis.url().as_str()).unwrap();
    let mut c = client.get_connection().unwrap();
    let hash: BTreeMap<String, i64> = redis::cmd("HGETALL")
        .arg("kafka:topic:topic_1:groupC")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        hash,
        read.iter()
            .filter(|((t, _), _)| t == "topic_1")
            .map(|((_, p), (_, until))| (p.to_string(), *until))
            .collect(),
        "the tutorial's layout: field = partition, value = next offset"
    );
    run(dir.path(), 1, &producer_1);
    let second = printed(&run(dir.path(), 1, &redis_job));
    assert_eq!(second[0].1, vec!["rdd.count = 10; time = 5000 ms"]);
    assert_eq!(second[1].1.len(), 3, "{:?}", second[1].1);
    for (p, (from, _)) in ranges(&second[1].1) {
        assert_eq!(from, read[&p].1, "{p:?} goes on from the stored offset");
    }
}

const CHECKPOINTED: &str = "
SET checkpoint = 'ck';
CREATE SOURCE events WITH (connector = 'kafka', brokers = 'BROKERS', topics = 'events',
  starting_offsets = 'earliest', max_rows_per_partition = 150);
CREATE STREAM got AS SELECT value FROM events;
CREATE SINK saved FROM got WITH (connector = 'text', path = 'out/got');
";

/// Every line of every file the text sink wrote (one directory a batch).
fn saved(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("out")) else {
        return lines;
    };
    for batch in entries {
        let batch = batch.unwrap().path();
        for f in std::fs::read_dir(&batch).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            // Not a staging file a kill left (`name#<n>`; a restart removes them).
            if name.starts_with("part-") && !name.contains('#') {
                let text = std::fs::read_to_string(&f).unwrap();
                lines.extend(text.lines().map(str::to_string));
            }
        }
    }
    lines
}

#[test]
fn a_checkpointed_kafka_job_killed_mid_stream_writes_every_record_once() {
    let Some(kafka) = KafkaServer::start() else {
        return;
    };
    kafka.create_topic("events", 3);
    kafka.produce("events", &kafka_server::records("v", 6000, 3));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.sql"),
        CHECKPOINTED.replace("BROKERS", &kafka.brokers()),
    )
    .unwrap();
    // 2000 records a partition, 150 a batch: 14 batches.
    let job = |dir: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
        c.args(["run", "--clock", "simulated", "--batches", "14", "job.sql"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    // Each run is killed as soon as it has committed one more batch than
    // the run before (the next batch is then being cut or written).
    let last_commit = |dir: &Path| -> i64 {
        std::fs::read_dir(dir.join("ck"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.strip_prefix("manifest-")?
                            .strip_suffix(".json")?
                            .parse()
                            .ok()
                    })
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    let mut kills = 0;
    for _ in 0..5 {
        let before = last_commit(dir.path());
        let mut child = job(dir.path()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while last_commit(dir.path()) == before && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no batch committed in 60 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let last = job(dir.path()).output().unwrap();
    assert!(last.status.success(), "{}", stderr(&last));
    assert!(
        kills >= 3,
        "killed mid-stream after a commit {kills} times, not 3"
    );
    let mut got = saved(dir.path());
    assert_eq!(got.len(), 6000, "no record twice, none lost");
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 6000, "no record twice");
}
