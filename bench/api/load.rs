//! A fixed-rate load generator for `GET /health` (see BENCHMARKS.md, "Control
//! API"): `wrk` asks for as many requests as the server can answer, which
//! says what the API can take but not what a given load costs the log path.
//! This one sends RATE requests/s in all over CONNECTIONS keep-alive
//! connections, for SECONDS, and prints the rate reached and the latency
//! percentiles.
//!
//! Latency is measured from when a request was due, not from when it was
//! sent, so a stalled server is not hidden by the client waiting for it.
//!
//! Usage: load HOST:PORT RATE CONNECTIONS SECONDS. No dependencies:
//! `rustc -O bench/api/load.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: load HOST:PORT RATE CONNECTIONS SECONDS");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let rate: f64 = args[2].parse().expect("RATE");
    let connections: usize = args[3].parse().expect("CONNECTIONS");
    let seconds: f64 = args[4].parse().expect("SECONDS");
    let interval = Duration::from_secs_f64(connections as f64 / rate);
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|k| {
            let addr = addr.clone();
            // Spread the connections' first requests over one interval.
            let first = start + interval.mul_f64(k as f64 / connections as f64);
            std::thread::spawn(move || connection(&addr, first, interval, end))
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut errors = 0u64;
    for worker in workers {
        let (lat, err) = worker.join().expect("worker");
        latencies.extend(lat);
        errors += err;
    }
    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    println!(
        "requests {} in {:.1} s: {:.0} req/s (asked {:.0}); errors {}; latency ms p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
        latencies.len(),
        seconds,
        latencies.len() as f64 / seconds,
        rate,
        errors,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
}

/// One keep-alive connection sending a request every `interval` from
/// `first` until `end`; returns the latencies and the number of errors.
fn connection(
    addr: &str,
    first: Instant,
    interval: Duration,
    end: Instant,
) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(_) => return (latencies, 1),
    };
    let _ = stream.set_nodelay(true);
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut buf = vec![0u8; 4096];
    let mut due = first;
    while due < end {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if stream.write_all(request.as_bytes()).is_err() || !read_response(&mut stream, &mut buf)
        {
            errors += 1;
            match TcpStream::connect(addr) {
                Ok(s) => stream = s,
                Err(_) => return (latencies, errors),
            }
        } else {
            latencies.push(due.elapsed());
        }
        due += interval;
    }
    (latencies, errors)
}

/// Reads one HTTP response (head, then `Content-Length` bytes of body).
fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> bool {
    let mut have = 0;
    loop {
        let n = match stream.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        have += n;
        let text = &buf[..have];
        let Some(head_end) = text.windows(4).position(|w| w == b"\r\n\r\n") else {
            if have == buf.len() {
                return false;
            }
            continue;
        };
        let head = String::from_utf8_lossy(&text[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if have >= head_end + 4 + length {
            return true;
        }
        if have == buf.len() {
            return false;
        }
    }
}
