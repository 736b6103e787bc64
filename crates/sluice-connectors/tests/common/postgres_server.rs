//! A throwaway PostgreSQL server from Debian's packages on 127.0.0.1: its
//! own data directory in a temp dir, trust authentication for user `sluice`,
//! stopped when dropped. As root, the server runs as the `postgres` user
//! (it refuses root). `None` (the test passes with a note) when the server
//! is not installed, unless `SLUICE_POSTGRES_TESTS=required`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::outside::{free_port, present};

pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
}

impl PgServer {
    pub fn start() -> Option<PgServer> {
        let bin = bin_dir();
        if !present(
            bin.is_some(),
            "SLUICE_POSTGRES_TESTS",
            "PostgreSQL's server",
            "apt-get install postgresql",
        ) {
            return None;
        }
        let bin = bin?;
        let as_postgres = is_root();
        let dir = tempfile::tempdir().unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:postgres", dir.path().to_str().unwrap()])
                .status()
                .unwrap();
            assert!(ok.success(), "chown of the data directory failed");
        }
        let mut server = PgServer {
            dir,
            bin,
            as_postgres,
            port: free_port(),
        };
        let data = server.data();
        server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "sluice",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        // The port was free a moment ago; another process may have taken it.
        for _ in 0..3 {
            if server.try_resume() {
                return Some(server);
            }
            server.port = free_port();
        }
        server.resume();
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `psql`-style URL of the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://sluice@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (as a crash would).
    pub fn halt(&self) {
        self.run(
            "pg_ctl",
            &["stop", "-D", &self.data(), "-m", "immediate", "-w"],
        );
    }

    /// Starts the server (again) on the same port and data.
    pub fn resume(&self) {
        assert!(
            self.try_resume(),
            "the server did not start: see {}/log",
            self.dir.path().display()
        );
    }

    fn try_resume(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.command("pg_ctl")
            .args([
                "start",
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// One of the server's tools, run as the user the server runs as.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A client connection for checking what the sink wrote.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-D", &self.data(), "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The newest installed server's `bin`.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
