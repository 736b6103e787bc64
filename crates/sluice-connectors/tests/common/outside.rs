//! What the tests of outside programs (PostgreSQL, moto, tansu, Redis)
//! share: whether the program is there (skip, or fail when CI says the
//! tests are required), a free loopback port, and waiting for a server to
//! listen.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// `true` when `found`; else the test is skipped with `install` as the
/// hint, unless the environment variable `required` is `required`.
pub fn present(found: bool, required: &str, what: &str, install: &str) -> bool {
    if !found {
        assert_ne!(
            std::env::var(required).as_deref(),
            Ok("required"),
            "{what} is not installed: {install}"
        );
        eprintln!("skipped: {what} is not installed ({install})");
    }
    found
}

/// A loopback port free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Waits for `what` to listen on `port`.
pub fn wait_for_port(port: u16, what: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
