//! A small HTTP/1.1 server on 127.0.0.1 for the grant tests, which counts
//! the connections it accepts. Paths (any query is ignored): `/hello`
//! answers "hello", `/echo` answers the request's body with its content
//! type, `/redirect` redirects to `target`, `/big` sends `big` bytes, `/slow`
//! never answers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A running server; its threads end with the test process.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Server {
    /// Listen on a free port of 127.0.0.1; `/redirect` points to `target`
    /// and `/big` sends `big` bytes.
    pub fn start(target: String, big: usize) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let target = target.clone();
                std::thread::spawn(move || answer(stream, &target, big));
            }
        });
        Ok(Self { addr, accepted })
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Answers one request on `stream`.
fn answer(mut stream: TcpStream, target: &str, big: usize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    // The path without its query.
    let requested = head.split_whitespace().nth(1).unwrap_or("/");
    let path = requested.split('?').next().unwrap_or(requested);
    let (status, extra, body) = match path {
        "/hello" => ("200 OK", String::new(), b"hello".to_vec()),
        "/echo" => {
            let mut body = vec![0u8; header(&head, "content-length").parse().unwrap_or(0)];
            if stream.read_exact(&mut body).is_err() {
                return;
            }
            let kind = header(&head, "content-type");
            ("200 OK", format!("Content-Type: {kind}\r\n"), body)
        }
        "/redirect" => (
            "302 Found",
            format!("Location: {target}\r\n"),
            b"moved".to_vec(),
        ),
        "/big" => ("200 OK", String::new(), vec![b'x'; big]),
        "/slow" => {
            // Holds the connection open without answering.
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        _ => ("404 Not Found", String::new(), Vec::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.write_all(&body);
}

/// The value of header `name` (lower case) in the request `head`, or "".
fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.trim())
}
