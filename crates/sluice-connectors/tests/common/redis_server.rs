//! A throwaway Redis server from Debian's packages on 127.0.0.1, without
//! persistence, stopped when dropped. `None` (the test passes with a note)
//! when it is not installed, unless `SLUICE_REDIS_TESTS=required`.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::outside::{Daemon, present};

pub struct RedisServer {
    daemon: Daemon,
}

fn spawn(port: u16) -> Child {
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !present(
            installed,
            "SLUICE_REDIS_TESTS",
            "redis-server",
            "apt-get install redis-server",
        ) {
            return None;
        }
        Some(RedisServer {
            daemon: Daemon::start("redis-server", Duration::from_secs(10), spawn),
        })
    }

    /// Stops the server (what it held is gone: no persistence).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Freezes the server (`SIGSTOP`): connections are accepted and nothing
    /// is answered until [`RedisServer::resume`]; what it holds is kept.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let ok = Command::new("kill")
            .arg(which)
            .arg(self.daemon.pid().to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill {which}");
    }

    /// Starts the server again, empty, on the same port.
    pub fn restart(&mut self) {
        self.daemon.restart();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.daemon.port)
    }
}
