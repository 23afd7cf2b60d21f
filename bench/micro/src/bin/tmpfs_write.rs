//! What writing pidzero's output costs by itself: 2,000,000 records of 182
//! bytes (the JSON of the throughput benchmark's 100-byte lines, 364 MB) to a
//! new file, in buffers of 120 KiB, one `write` each. Two ways, alternating:
//!
//! - `local`: one thread fills a buffer and writes it;
//! - `cross`: one thread fills buffers and another writes them, handing them
//!   back for reuse, as pidzero's readers and writer thread do.
//!
//! Prints, per way, the medians of ROUNDS rounds: wall time, CPU time spent
//! filling buffers and CPU time spent in `write` (each thread's own clock).
//! See BENCHMARKS.md ("sixth round").
//!
//! Usage: tmpfs_write FILE [ROUNDS]   (FILE on the file system to measure,
//! e.g. /dev/shm/pidzero-write.out; removed before each round and at the end)

use std::fs::File;
use std::io::Write;
use std::sync::mpsc::{channel, sync_channel};
use std::time::{Duration, Instant};

const RECORD: usize = 182;
const RECORDS: usize = 2_000_000;
const BUFFER: usize = 120 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !(2..=3).contains(&args.len()) {
        eprintln!("usage: tmpfs_write FILE [ROUNDS]");
        std::process::exit(2);
    }
    let path = &args[1];
    let rounds: usize = args
        .get(2)
        .map_or(5, |r| r.parse().expect("ROUNDS is a number"));
    let record: Vec<u8> = (0..RECORD - 1)
        .map(|i| b'a' + (i % 26) as u8)
        .chain([b'\n'])
        .collect();
    let mut results: [Vec<[f64; 3]>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (cross, result) in results.iter_mut().enumerate() {
            let _ = std::fs::remove_file(path);
            let file = File::create(path).expect("create FILE");
            result.push(if cross == 1 {
                run_cross(file, &record)
            } else {
                run_local(file, &record)
            });
        }
    }
    let _ = std::fs::remove_file(path);
    for (name, result) in ["local", "cross"].iter().zip(&results) {
        let median = |k: usize| {
            let mut v: Vec<f64> = result.iter().map(|r| r[k]).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{name}: wall {:.0} ms, filling {:.0} ms CPU, writing {:.0} ms CPU (medians of {rounds})",
            median(0),
            median(1),
            median(2)
        );
    }
}

/// Fills `buffer` with whole records, as many as fit; returns how many.
fn fill(buffer: &mut Vec<u8>, record: &[u8], left: usize) -> usize {
    buffer.clear();
    let n = (BUFFER / RECORD).min(left);
    for _ in 0..n {
        buffer.extend_from_slice(record);
    }
    n
}

/// [wall ms, fill CPU ms, write CPU ms] with one thread doing both.
fn run_local(mut file: File, record: &[u8]) -> [f64; 3] {
    let start = Instant::now();
    let (mut filling, mut writing) = (Duration::ZERO, Duration::ZERO);
    let mut buffer = Vec::with_capacity(BUFFER);
    let mut left = RECORDS;
    while left > 0 {
        let t = thread_cpu();
        left -= fill(&mut buffer, record, left);
        let u = thread_cpu();
        file.write_all(&buffer).expect("write FILE");
        filling += u - t;
        writing += thread_cpu() - u;
    }
    [ms(start.elapsed()), ms(filling), ms(writing)]
}

/// [wall ms, fill CPU ms, write CPU ms] with a filling and a writing thread.
fn run_cross(mut file: File, record: &[u8]) -> [f64; 3] {
    let start = Instant::now();
    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(4);
    let (empty_tx, empty_rx) = channel::<Vec<u8>>();
    for _ in 0..6 {
        empty_tx.send(Vec::with_capacity(BUFFER)).expect("the pool");
    }
    let writer = std::thread::spawn(move || {
        let mut writing = Duration::ZERO;
        for buffer in full_rx {
            let t = thread_cpu();
            file.write_all(&buffer).expect("write FILE");
            writing += thread_cpu() - t;
            let _ = empty_tx.send(buffer);
        }
        writing
    });
    let mut filling = Duration::ZERO;
    let mut left = RECORDS;
    while left > 0 {
        let mut buffer = empty_rx.recv().expect("buffers come back");
        let t = thread_cpu();
        left -= fill(&mut buffer, record, left);
        filling += thread_cpu() - t;
        full_tx.send(buffer).expect("the writer runs");
    }
    drop(full_tx);
    let writing = writer.join().expect("the writer thread");
    [ms(start.elapsed()), ms(filling), ms(writing)]
}

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
