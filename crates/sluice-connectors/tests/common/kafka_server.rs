//! A throwaway Kafka-protocol broker on 127.0.0.1: `tansu` with its sqlite
//! storage in a temp dir, stopped when dropped. Found on `PATH`, in
//! `$SLUICE_TOOLS/bin` or in `~/.cache/sluice/tools/bin` (where `.ci/run`
//! installs it). `None` (the test passes with a note) when it is not
//! installed, unless `SLUICE_KAFKA_TESTS=required`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::outside::{Daemon, present};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

pub struct KafkaServer {
    /// Dropped first: the broker stops before its storage goes.
    daemon: Daemon,
    bin: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn tansu() -> Option<PathBuf> {
    let mut places: Vec<PathBuf> = Vec::new();
    if let Ok(tools) = std::env::var("SLUICE_TOOLS") {
        places.push(PathBuf::from(tools).join("bin/tansu"));
    }
    if let Ok(home) = std::env::var("HOME") {
        places.push(PathBuf::from(home).join(".cache/sluice/tools/bin/tansu"));
    }
    if let Ok(path) = std::env::var("PATH") {
        places.extend(std::env::split_paths(&path).map(|d| d.join("tansu")));
    }
    places.into_iter().find(|p| p.is_file())
}

/// `n` records `(partition, key, value)` for [`KafkaServer::produce`]: key
/// `k<i>`, value `<prefix><i>`, record `i` in partition `i % partitions`.
pub fn records(prefix: &str, n: usize, partitions: usize) -> Vec<(i32, String, String)> {
    (0..n)
        .map(|i| {
            (
                (i % partitions) as i32,
                format!("k{i}"),
                format!("{prefix}{i}"),
            )
        })
        .collect()
}

/// Runs `tansu broker` on 127.0.0.1:`port` with its storage in `dir`.
fn spawn(bin: &std::path::Path, dir: &std::path::Path, port: u16) -> Child {
    let url = format!("tcp://127.0.0.1:{port}");
    Command::new(bin)
        .arg("broker")
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        // Relative to the working directory (an absolute path is not).
        .args(["--storage-engine", "sqlite://tansu.db"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu starts")
}

impl KafkaServer {
    pub fn start() -> Option<KafkaServer> {
        let bin = tansu();
        if !present(
            bin.is_some(),
            "SLUICE_KAFKA_TESTS",
            "the tansu broker",
            "bash .ci/run installs it",
        ) {
            return None;
        }
        let bin = bin?;
        let dir = tempfile::tempdir().unwrap();
        let (spawn_bin, storage) = (bin.clone(), dir.path().to_path_buf());
        let daemon = Daemon::start("tansu", Duration::from_secs(30), move |port| {
            spawn(&spawn_bin, &storage, port)
        });
        Some(KafkaServer {
            port: daemon.port,
            daemon,
            bin,
            _dir: dir,
        })
    }

    /// Stops the broker (as a crash would); [`KafkaServer::restart`] brings
    /// it back with what it had.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Starts the broker again on the same port and storage.
    pub fn restart(&mut self) {
        self.daemon.restart();
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let ok = Command::new(&self.bin)
            .args(["topic", "create", topic, "--partitions"])
            .arg(partitions.to_string())
            .arg("--broker")
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "tansu topic create {topic}");
    }

    /// Deletes `topic`.
    pub fn delete_topic(&self, topic: &str) {
        let ok = Command::new(&self.bin)
            .args(["topic", "delete", topic, "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "tansu topic delete {topic}");
    }

    /// Produces `(partition, key, value)` records to `topic`, and waits for
    /// every one to be acknowledged.
    pub fn produce(&self, topic: &str, records: &[(i32, String, String)]) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("linger.ms", "5")
            .create()
            .unwrap();
        for (partition, key, value) in records {
            let mut record = BaseRecord::to(topic)
                .partition(*partition)
                .key(key)
                .payload(value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        producer.poll(Duration::from_millis(10));
                        record = r;
                    }
                }
            }
        }
        producer
            .flush(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("producing to {topic}: {e}"));
    }
}
