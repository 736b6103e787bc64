//! The tutorial's `SocketLikeNC` as a TCP server, for `socket` sources:
//! every client gets lines of random words (the `words` generator's), at a
//! steady rate. `sluice tools socket-words --port 9999` runs it, so the
//! socket examples need no `nc`.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let server = sluice_connectors::word_server::WordServer::bind("127.0.0.1:9999", 10, 7).await?;
//! println!("serving words on {}", server.address()?);
//! server.serve().await
//! # }
//! ```

use std::time::Duration;

use arrow::array::AsArray;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::words::{TUTORIAL_WORDS, WordsSource};

/// Ticks per second; each sends `lines_per_second / TICKS` lines (rounded
/// down, the rest carried).
const TICKS: u64 = 10;

/// A listening word server.
pub struct WordServer {
    listener: TcpListener,
    lines_per_second: u64,
    seed: u64,
}

impl WordServer {
    pub async fn bind(address: &str, lines_per_second: u64, seed: u64) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(address).await?,
            lines_per_second,
            seed,
        })
    }

    pub fn address(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts clients until the task is aborted; each gets its own stream
    /// of lines.
    pub async fn serve(self) -> std::io::Result<()> {
        let mut client = 0u64;
        loop {
            let (socket, peer) = self.listener.accept().await?;
            log::info!("word server: client {peer}");
            client += 1;
            tokio::spawn(send_words(
                socket,
                self.lines_per_second,
                self.seed ^ client,
            ));
        }
    }
}

async fn send_words(mut socket: TcpStream, lines_per_second: u64, seed: u64) {
    let words: Vec<String> = TUTORIAL_WORDS.split(' ').map(str::to_string).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / TICKS));
    let mut carried = 0u64;
    for n in 0u64.. {
        tick.tick().await;
        let due = lines_per_second + carried;
        let lines = due / TICKS;
        carried = due % TICKS;
        let Ok(source) = WordsSource::new(seed, lines as usize, 2, words.clone(), None) else {
            return;
        };
        let Ok(batch) = source.generate(n as i64) else {
            return;
        };
        let mut text = String::new();
        for line in batch.column(0).as_string::<i32>().iter().flatten() {
            text.push_str(line);
            text.push('\n');
        }
        if socket.write_all(text.as_bytes()).await.is_err() {
            return; // the client went away
        }
    }
}
