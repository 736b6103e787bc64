//! What the tests of outside programs (PostgreSQL, moto, tansu, Redis)
//! share: whether the program is there (skip, or fail when CI says the
//! tests are required), a free loopback port, and waiting for a server to
//! listen.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::Child;
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

/// A server process a test started on 127.0.0.1:`port`, killed when
/// dropped; [`Daemon::stop`] and [`Daemon::restart`] play a crash and a
/// recovery on the same port.
pub struct Daemon {
    child: Child,
    pub port: u16,
    what: &'static str,
    within: Duration,
    spawn: Box<dyn Fn(u16) -> Child + Send + Sync>,
}

impl Daemon {
    /// Runs `spawn(port)` on a free port and waits up to `within` for
    /// `what` to listen there.
    pub fn start(
        what: &'static str,
        within: Duration,
        spawn: impl Fn(u16) -> Child + Send + Sync + 'static,
    ) -> Self {
        let port = free_port();
        let child = spawn(port);
        let daemon = Daemon {
            child,
            port,
            what,
            within,
            spawn: Box::new(spawn),
        };
        wait_for_port(port, what, within);
        daemon
    }

    /// Kills the process (as a crash would).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the process again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.child = (self.spawn)(self.port);
        wait_for_port(self.port, self.what, self.within);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
