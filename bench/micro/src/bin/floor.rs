//! The floor of the log-throughput benchmark on this machine: the least a
//! program must do to turn the generator's lines into pidzero's JSON records
//! in a file, with nothing else (see BENCHMARKS.md).
//!
//! One thread per generator reads its pipe (blocking reads of 64 KiB into one buffer),
//! finds the newlines with `memchr_iter` and copies each line between a fixed
//! head and tail; a second thread writes the formatted buffers (up to four per
//! `writev`) and sends them back for reuse. No escaping check, no epoll, no
//! recent-records ring, no control loop: what pidzero does beyond this is
//! what it costs over the floor.
//!
//! Usage: floor GEN LINES FILE [GENERATORS [CHUNK]]; GENERATORS (default 1)
//! share the LINES, each writing CHUNK bytes at a time (default 4096). Prints the wall time in ms (spawning the generators to the
//! last write) and checks the record count.
//!
//! With PIDZERO_FLOOR_SOCKET=1 the same bytes also go to a local TCP
//! receiver, as with a `log.forward` handler beside the file: the writer
//! thread hands each written round to a sending thread (a bounded channel,
//! so nothing is dropped: the floor of doing both), which writes it to the
//! socket; a receiving thread reads and counts lines exactly as the
//! receiver of bench/bench.rs does (256 KiB reads, newlines counted). The
//! time then runs to the last byte sent, and the receiver's count is
//! checked too.

use std::fs::OpenOptions;
use std::io::{IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const READ_BYTES: usize = 64 * 1024;
const HEAD_START: &[u8] = br#"{"timestamp":"2026-11-28T00:00:00.000Z","source":""#;
const HEAD_END: &[u8] = br#"","stream":"stdout","line":""#;
const TAIL: &[u8] = b"\"}\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !(4..=6).contains(&args.len()) {
        eprintln!("usage: floor GEN LINES FILE [GENERATORS [CHUNK]]");
        std::process::exit(2);
    }
    let (gen, path) = (&args[1], args[3].clone());
    let lines: u64 = args[2].parse().expect("LINES is a number");
    let gens: u64 = args
        .get(4)
        .map_or(1, |g| g.parse().expect("GENERATORS is a number"));
    let chunk = args.get(5).map_or("4096", String::as_str);
    let _ = std::fs::remove_file(&path);
    let start = Instant::now();
    let mut children = Vec::new();
    let mut pipes = Vec::new();
    for i in 0..gens {
        let mut child = Command::new(gen)
            .args([format!("g{i}"), (lines / gens).to_string(), chunk.into()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the generator");
        pipes.push(child.stdout.take().expect("piped stdout"));
        children.push(child);
    }
    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(8);
    let pool = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let socket = std::env::var_os("PIDZERO_FLOOR_SOCKET").is_some_and(|v| v != "0");
    let (receiver, sender, sent_tx) = if socket {
        let (r, s, tx) = start_socket(Arc::clone(&pool));
        (Some(r), Some(s), Some(tx))
    } else {
        (None, None, None)
    };
    let writer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
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
                if let Some(sent_tx) = &sent_tx {
                    sent_tx
                        .send(std::mem::take(&mut round))
                        .expect("the sender is running");
                    continue;
                }
                let mut pool = pool.lock().expect("the pool");
                for mut buffer in round.drain(..) {
                    buffer.clear();
                    pool.push(buffer);
                }
            }
        })
    };
    // One reading thread per generator, as blocking reads need.
    let readers: Vec<_> = pipes
        .into_iter()
        .enumerate()
        .map(|(i, pipe)| {
            let (full_tx, pool) = (full_tx.clone(), Arc::clone(&pool));
            std::thread::spawn(move || read_pipe(pipe, &format!("g{i}"), &full_tx, &pool))
        })
        .collect();
    drop(full_tx);
    let records: u64 = readers
        .into_iter()
        .map(|r| r.join().expect("a reading thread"))
        .sum();
    writer.join().expect("the writer thread");
    if let Some(sender) = sender {
        sender.join().expect("the sending thread");
    }
    for mut child in children {
        child.wait().expect("wait for the generator");
    }
    println!("{:.1}", start.elapsed().as_secs_f64() * 1e3);
    assert_eq!(records, lines / gens * gens, "record count");
    if let Some(receiver) = receiver {
        let received = receiver.join().expect("the receiving thread");
        assert_eq!(received, records, "records received");
    }
}

/// The receiving thread (bench.rs's receiver: reads and counts lines until
/// the connection closes) and the sending thread, which writes each round
/// the writer hands it to the socket, then gives its buffers back.
fn start_socket(
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
) -> (
    std::thread::JoinHandle<u64>,
    std::thread::JoinHandle<()>,
    SyncSender<Vec<Vec<u8>>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let receiver = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut received = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            received += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        received
    });
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (sent_tx, sent_rx) = sync_channel::<Vec<Vec<u8>>>(8);
    let sender = std::thread::spawn(move || {
        while let Ok(round) = sent_rx.recv() {
            for buffer in &round {
                stream.write_all(buffer).expect("send");
            }
            let mut pool = pool.lock().expect("the pool");
            for mut buffer in round {
                buffer.clear();
                pool.push(buffer);
            }
        }
    });
    (receiver, sender, sent_tx)
}

/// Reads one generator's pipe to its end, sending each read's records to the
/// writer; returns how many records it made.
fn read_pipe(
    mut pipe: impl Read,
    source: &str,
    full_tx: &SyncSender<Vec<u8>>,
    pool: &Mutex<Vec<Vec<u8>>>,
) -> u64 {
    let head = [HEAD_START, source.as_bytes(), HEAD_END].concat();
    let mut buffer = vec![0u8; READ_BYTES * 2];
    let mut carry = 0;
    let mut records = 0u64;
    loop {
        let n = pipe
            .read(&mut buffer[carry..carry + READ_BYTES])
            .expect("read the pipe");
        if n == 0 {
            return records;
        }
        let data = &buffer[..carry + n];
        let mut out = pool
            .lock()
            .expect("the pool")
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(2 * READ_BYTES));
        let mut at = 0;
        for newline in memchr::memchr_iter(b'\n', data) {
            out.extend_from_slice(&head);
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
