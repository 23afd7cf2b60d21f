//! The floor of the log-throughput benchmark on this machine: the least a
//! program must do to turn the generator's lines into pidzero's JSON records
//! in a file, with nothing else (see BENCHMARKS.md).
//!
//! One thread reads the pipe (blocking reads of 64 KiB into one buffer),
//! finds the newlines with `memchr_iter` and copies each line between a fixed
//! head and tail; a second thread writes the formatted buffers (up to four per
//! `writev`) and sends them back for reuse. No escaping check, no epoll, no
//! recent-records ring, no control loop: what pidzero does beyond this is
//! what it costs over the floor.
//!
//! Usage: floor GEN LINES FILE; prints the wall time in ms (spawning the
//! generator to the last write) and checks the record count.

use std::fs::OpenOptions;
use std::io::{IoSlice, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, sync_channel};
use std::time::Instant;

const READ_BYTES: usize = 64 * 1024;
const HEAD: &[u8] = br#"{"timestamp":"2026-11-28T00:00:00.000Z","source":"g0","stream":"stdout","line":""#;
const TAIL: &[u8] = b"\"}\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: floor GEN LINES FILE");
        std::process::exit(2);
    }
    let (gen, lines, path) = (&args[1], &args[2], args[3].clone());
    let _ = std::fs::remove_file(&path);
    let start = Instant::now();
    let mut child = Command::new(gen)
        .args(["g0", lines, "4096"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the generator");
    let mut pipe = child.stdout.take().expect("piped stdout");
    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(8);
    let (empty_tx, empty_rx) = channel::<Vec<u8>>();
    let writer = std::thread::spawn(move || {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open the output");
        let mut round = Vec::new();
        while let Ok(buffer) = full_rx.recv() {
            round.push(buffer);
            while round.len() < 4 {
                match full_rx.try_recv() {
                    Ok(buffer) => round.push(buffer),
                    Err(_) => break,
                }
            }
            write_all(&mut file, &round);
            for mut buffer in round.drain(..) {
                buffer.clear();
                let _ = empty_tx.send(buffer);
            }
        }
    });
    let mut buffer = vec![0u8; READ_BYTES * 2];
    let mut carry = 0;
    let mut records = 0u64;
    loop {
        let n = pipe
            .read(&mut buffer[carry..carry + READ_BYTES])
            .expect("read the pipe");
        if n == 0 {
            break;
        }
        let data = &buffer[..carry + n];
        let mut out = empty_rx
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(2 * READ_BYTES));
        let mut at = 0;
        for newline in memchr::memchr_iter(b'\n', data) {
            out.extend_from_slice(HEAD);
            out.extend_from_slice(&data[at..newline]);
            out.extend_from_slice(TAIL);
            at = newline + 1;
            records += 1;
        }
        full_tx.send(out).expect("the writer is running");
        let end = data.len();
        buffer.copy_within(at..end, 0);
        carry = end - at;
    }
    drop(full_tx);
    writer.join().expect("the writer thread");
    child.wait().expect("wait for the generator");
    println!("{:.1}", start.elapsed().as_secs_f64() * 1e3);
    assert_eq!(records.to_string(), *lines, "record count");
}

/// Writes every buffer of `round`, with one `writev` when it takes them all.
fn write_all(file: &mut std::fs::File, round: &[Vec<u8>]) {
    let total: usize = round.iter().map(Vec::len).sum();
    let slices: Vec<IoSlice> = round.iter().map(|b| IoSlice::new(b)).collect();
    let written = file.write_vectored(&slices).expect("write the output");
    if written < total {
        let rest: Vec<u8> = round.concat();
        file.write_all(&rest[written..]).expect("write the output");
    }
}
