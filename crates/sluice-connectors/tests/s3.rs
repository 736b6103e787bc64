//! The directory source and the file sinks on an `s3://` bucket of a real
//! S3-compatible server: moto's, from PyPI (`pip install 'moto[server]'`),
//! started here on 127.0.0.1 and stopped at the end. The bucket is opened
//! the way a user's is, from the AWS environment variables.
//!
//! Without `moto_server` on the PATH the test says so and passes, unless
//! `SLUICE_S3_TESTS=required` (as `.ci/run` sets after installing it).

mod common;
#[path = "common/outside.rs"]
mod outside;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;

/// moto's server, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Option<Moto> {
    let found = Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !outside::present(
        found,
        "SLUICE_S3_TESTS",
        "moto_server",
        "pip install 'moto[server]'",
    ) {
        return None;
    }
    // A port free a moment ago may be taken by then: try another.
    for _ in 0..3 {
        let port = outside::free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(moto);
            }
            if moto.child.try_wait().unwrap().is_some() {
                break; // exited: the port was taken
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("moto_server did not start on three ports");
}

/// `PUT /bucket`: moto does not check signatures, so plain HTTP creates it.
fn create_bucket(port: u16, bucket: &str) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[test]
fn directory_source_and_file_sinks_on_s3() {
    let Some(moto) = start_moto() else { return };
    create_bucket(moto.port, "sluice");
    // SAFETY: the only test in this binary, and no other thread has started
    // yet: nothing reads the environment while it is written.
    unsafe {
        std::env::set_var("AWS_ENDPOINT", format!("http://127.0.0.1:{}", moto.port));
        std::env::set_var("AWS_ALLOW_HTTP", "true");
        std::env::set_var("AWS_ACCESS_KEY_ID", "sluice");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "sluice");
        std::env::set_var("AWS_REGION", "us-east-1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let session = SessionContext::new();
        common::directory_and_sink_on(&session, "s3://sluice/").await;
        // A fresh session with sluice's registry reads the bucket in plain
        // SQL, before any source or sink has opened it.
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_object_store_registry(std::sync::Arc::new(
                sluice_connectors::store::OpeningObjectStores::default(),
            ))
            .build_arc()
            .unwrap();
        let fresh = SessionContext::new_with_config_rt(Default::default(), runtime);
        fresh
            .sql("CREATE EXTERNAL TABLE archive STORED AS PARQUET LOCATION 's3://sluice/out/'")
            .await
            .unwrap();
        let rows = fresh
            .sql("SELECT count(*) AS n FROM archive")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(common::text(&rows), ["2"]);
        // A bucket that does not exist: the listing error names the path.
        let err = common::source(&session, None, &[("path", "s3://no-such-bucket/in/")])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s3://no-such-bucket/in/") && err.contains("cannot list"),
            "{err}"
        );
    });
}
