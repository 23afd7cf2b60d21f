//! `cargo run --release --manifest-path bench/micro/Cargo.toml`: framing and
//! JSON formatting of a batch of 655 lines of 100 bytes (one 64 KiB pipe
//! read of the throughput benchmark's generator), in ns per line, best of
//! five rounds of 20,000 batches. Then the same with `"parse": "json"`:
//! for those text lines (what a daemon that logs text pays for the
//! setting), and for lines of JSON objects of about 100 bytes in JSON and
//! logfmt.

use std::time::Instant;

use pidzero::config::{LineParse, LogFormat};
use pidzero::log::format::format_batch;
use pidzero::log::{Framer, LineBatch, Stream};

const LINES: usize = 655;
const ROUNDS: usize = 5;
const BATCHES: usize = 20_000;

fn main() {
    let mut read = Vec::new();
    for i in 0..LINES {
        let mut line = format!("g0 {i:010} ").into_bytes();
        while line.len() < 99 {
            line.push(b'a' + (line.len() % 26) as u8);
        }
        line.push(b'\n');
        read.extend_from_slice(&line);
    }
    let new_batch = || LineBatch::new("g0".into(), Stream::Stdout, *b"2026-11-28T17:00:00.123Z");
    let framing = best(|| {
        let mut batch = new_batch();
        batch.data.reserve(read.len());
        Framer::new(16 * 1024).push(&read, &mut batch);
        assert_eq!(batch.lines.len(), LINES);
    });
    let mut batch = new_batch();
    Framer::new(16 * 1024).push(&read, &mut batch);
    let mut out = Vec::with_capacity(256 * 1024);
    let formatting = best(|| {
        out.clear();
        format_batch(&mut out, LogFormat::Json, &batch);
    });
    println!(
        "framing {framing:.1} ns/line (with the copy of the read into the batch), \
         JSON formatting {formatting:.1} ns/line ({} bytes per record)",
        out.len() / LINES
    );
    batch.route.parse = LineParse::Json;
    let text_parsed = best(|| {
        out.clear();
        format_batch(&mut out, LogFormat::Json, &batch);
    });
    let mut objects = Vec::new();
    for i in 0..LINES {
        let mut msg = format!("g0 {i:010} ");
        while msg.len() < 60 {
            msg.push((b'a' + (msg.len() % 26) as u8) as char);
        }
        objects.extend_from_slice(
            format!("{{\"level\":\"info\",\"msg\":\"{msg}\",\"n\":{i},\"ok\":true}}\n").as_bytes(),
        );
    }
    let mut batch = new_batch();
    batch.route.parse = LineParse::Json;
    Framer::new(16 * 1024).push(&objects, &mut batch);
    assert_eq!(batch.lines.len(), LINES);
    let mut result = |format| {
        let ns = best(|| {
            out.clear();
            format_batch(&mut out, format, &batch);
        });
        (ns, out.len() / LINES)
    };
    let (json, json_bytes) = result(LogFormat::Json);
    let (logfmt, logfmt_bytes) = result(LogFormat::Logfmt);
    println!(
        "parse json: text lines {text_parsed:.1} ns/line; object lines of {} bytes: \
         JSON {json:.1} ns/line ({json_bytes} bytes per record), \
         logfmt {logfmt:.1} ns/line ({logfmt_bytes} bytes per record)",
        objects.len() / LINES
    );
}

/// The best of `ROUNDS` rounds of `BATCHES` calls of `f`, in ns per line.
fn best(mut f: impl FnMut()) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..BATCHES {
                f();
            }
            start.elapsed().as_nanos() as f64 / (BATCHES * LINES) as f64
        })
        .fold(f64::INFINITY, f64::min)
}
