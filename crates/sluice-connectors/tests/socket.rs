//! The socket source against real listeners on 127.0.0.1: lines split
//! across TCP writes, `\r\n`, a last line without newline, invalid UTF-8
//! (reported and skipped), a server that is not up yet, and a server
//! restart mid-stream (reconnect, no crash). And the word server feeding it.

use std::time::{Duration, Instant};

use arrow::array::AsArray;
use sluice_connectors::socket::SocketSource;
use sluice_connectors::word_server::WordServer;
use sluice_core::source::Source;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Cuts batches until `n` lines came (or 20 s pass).
async fn lines(source: &mut SocketSource, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    let mut t = 0;
    while out.len() < n {
        assert!(Instant::now() < deadline, "only {out:?} of {n} lines");
        t += 1000;
        for b in source.cut(t).await.unwrap() {
            out.extend(
                b.column(0)
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(str::to_string),
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    out
}

/// Accepts the source's connection (20 s at most: a broken reconnect fails
/// the test rather than hanging it).
async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("the source connected")
        .unwrap()
}

#[tokio::test]
async fn lines_across_writes_bad_utf8_and_a_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut source = SocketSource::connect("s", "127.0.0.1".into(), port);
    let (mut conn, _) = accept(&listener).await;
    // One line in two writes, a \r\n line, a line that is not UTF-8.
    conn.write_all(b"hello wor").await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.write_all(b"ld\r\nsecond\n\xff\xfe bad\nthird\n")
        .await
        .unwrap();
    assert_eq!(
        lines(&mut source, 3).await,
        ["hello world", "second", "third"]
    );
    assert_eq!(source.bad_lines(), 1);

    // The server goes away (its last line has no newline) and comes back.
    conn.write_all(b"last words").await.unwrap();
    drop(conn);
    drop(listener);
    assert_eq!(lines(&mut source, 1).await, ["last words"]);
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (mut conn, _) = accept(&listener).await;
    conn.write_all(b"after the restart\n").await.unwrap();
    assert_eq!(lines(&mut source, 1).await, ["after the restart"]);
}

#[tokio::test]
async fn waits_for_a_server_that_is_not_up_yet() {
    // A free port, then nobody listening on it for a while.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let mut source = SocketSource::connect("s", "127.0.0.1".into(), port);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(source.cut(1000).await.unwrap()[0].num_rows() == 0);
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (mut conn, _) = accept(&listener).await;
    conn.write_all(b"finally\n").await.unwrap();
    assert_eq!(lines(&mut source, 1).await, ["finally"]);
}

#[tokio::test]
async fn the_word_server_sends_the_tutorials_words() {
    let server = WordServer::bind("127.0.0.1:0", 100, 7).await.unwrap();
    let port = server.address().unwrap().port();
    let task = tokio::spawn(server.serve());
    let mut source = SocketSource::connect("s", "127.0.0.1".into(), port);
    let got = lines(&mut source, 20).await;
    let vocabulary = sluice_connectors::words::TUTORIAL_WORDS;
    for line in &got {
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words.len(), 2, "{line}");
        assert!(
            words.iter().all(|w| vocabulary.split(' ').any(|v| v == *w)),
            "{line}"
        );
    }
    task.abort();
}
