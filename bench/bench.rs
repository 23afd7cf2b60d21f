//! The log-throughput benchmark driver (see BENCHMARKS.md); run it with
//! `bench/run.sh`, which builds everything first.
//!
//! For 1 and then 4 generators at once, and RUNS times each, it runs
//! - the generators into one pipe, `| cat > FILE`, and
//! - pidzero with one daemon per generator, JSON records to one file sink,
//!   stdout off,
//! all on DIR (a tmpfs such as /dev/shm), verifies every line of every output,
//! and prints the medians: lines/s, the ratio to cat, pidzero's CPU per
//! million lines (utime+stime of the pidzero process itself, read from
//! /proc/PID/stat while it is a zombie, so its children are not counted) and
//! its peak RSS (VmHWM of /proc/PID/status, sampled every 10 ms).
//!
//! With PIDZERO_BENCH_FLOOR set to the `floor` program of bench/micro (a bare
//! pipeline doing pidzero's job with nothing else), each run also times it the
//! same way (spawn to exit, output checked) and its ratio to cat is printed:
//! what the machine allowed in that invocation.
//!
//! With PIDZERO_BENCH_FORWARD=1 (`bench/forward.sh`), each run also times
//! pidzero with the same file sink plus a `log.forward` sink: once to a
//! local receiver (a thread of this driver that reads and counts lines,
//! as fast as the kernel hands them over), once to a port where nothing
//! listens. For all three pidzero runs the file is checked as usual and the
//! time is taken from spawn to the last generator's `exited` event (its
//! timestamp in the file; pidzero writes it after that generator's last
//! line): the forward sink's last attempts at exit (up to a second with no
//! receiver) are not the file's throughput. Printed: lines/s medians, each
//! forward run against the file-only run of the same invocation, and the
//! share of records the receiver got.
//!
//! Usage: bench PIDZERO GEN DIR [TOTAL_LINES [RUNS [CHUNK]]]
//! No dependencies: `rustc -O bench/bench.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LINE: usize = 100;

extern "C" {
    fn waitid(idtype: i32, id: u32, info: *mut u8, options: i32) -> i32;
    fn sysconf(name: i32) -> i64;
}
const P_PID: i32 = 1;
const WEXITED: i32 = 4;
const WNOWAIT: i32 = 0x0100_0000;
const SC_CLK_TCK: i32 = 2;

struct Args {
    pidzero: PathBuf,
    gen: PathBuf,
    dir: PathBuf,
    total: u64,
    runs: usize,
    chunk: usize,
    floor: Option<PathBuf>,
    /// PIDZERO_BENCH_FORWARD: also the runs with a forward sink.
    forward: bool,
}

/// The forward sink of one pidzero run.
#[derive(Clone, Copy)]
enum Forward {
    Off,
    /// To this local port.
    To(u16),
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 4 {
        eprintln!("usage: bench PIDZERO GEN DIR [TOTAL_LINES [RUNS [CHUNK]]]");
        std::process::exit(2);
    }
    let args = Args {
        pidzero: fs::canonicalize(&a[1]).expect("pidzero path"),
        gen: fs::canonicalize(&a[2]).expect("gen path"),
        dir: PathBuf::from(&a[3]),
        total: a.get(4).map_or(2_000_000, |s| s.parse().expect("TOTAL_LINES")),
        runs: a.get(5).map_or(9, |s| s.parse().expect("RUNS")),
        chunk: a.get(6).map_or(4096, |s| s.parse().expect("CHUNK")),
        floor: std::env::var_os("PIDZERO_BENCH_FLOOR")
            .map(|p| fs::canonicalize(p).expect("PIDZERO_BENCH_FLOOR path")),
        forward: std::env::var_os("PIDZERO_BENCH_FORWARD").is_some_and(|v| v != "0"),
    };
    let _ = fs::remove_dir_all(&args.dir);
    fs::create_dir_all(&args.dir).expect("bench dir");
    println!(
        "{} lines of {} bytes in all, generator writes of {} bytes, {} runs, medians",
        args.total, LINE, args.chunk, args.runs
    );
    let mut failed = false;
    for gens in [1usize, 4] {
        failed |= !scenario(&args, gens);
    }
    let _ = fs::remove_dir_all(&args.dir);
    if failed {
        std::process::exit(1);
    }
}

struct PidzeroRun {
    secs: f64,
    /// Spawn to the last generator's `exited` event.
    logged_secs: f64,
    cpu_secs: f64,
    hwm_kib: u64,
}

fn scenario(args: &Args, gens: usize) -> bool {
    let per_gen = args.total / gens as u64;
    let lines = per_gen * gens as u64;
    let mut cat_secs = Vec::new();
    let mut runs = Vec::new();
    let mut ratios = Vec::new();
    let mut floor_secs = Vec::new();
    let mut forwarded = Vec::new();
    let mut unreachable = Vec::new();
    for _ in 0..args.runs {
        let c = run_cat(args, gens, per_gen);
        let p = run_pidzero(args, gens, per_gen, Forward::Off);
        if let Some(floor) = &args.floor {
            floor_secs.push(run_floor(args, floor, gens, per_gen));
        }
        if args.forward {
            forwarded.push(run_forwarded(args, gens, per_gen));
            unreachable.push(run_pidzero(args, gens, per_gen, Forward::To(closed_port())));
        }
        ratios.push(c / p.secs);
        cat_secs.push(c);
        runs.push(p);
    }
    let cat_rate = lines as f64 / median(cat_secs.clone());
    let p_secs = median(runs.iter().map(|r| r.secs).collect());
    let p_rate = lines as f64 / p_secs;
    let cpu = median(runs.iter().map(|r| r.cpu_secs).collect());
    let hwm = runs.iter().map(|r| r.hwm_kib).max().unwrap_or(0);
    let hwm_med = median(runs.iter().map(|r| r.hwm_kib as f64).collect());
    println!(
        "{gens} generator(s) x {per_gen} lines: cat {:.2} M lines/s; pidzero {:.2} M lines/s; \
         ratio {:.2} (median of per-run ratios {:.2}); pidzero CPU {:.3} s per million lines \
         ({:.0} ns/line); peak RSS {:.1} MiB (median {:.1})",
        cat_rate / 1e6,
        p_rate / 1e6,
        p_rate / cat_rate,
        median(ratios),
        cpu / (lines as f64 / 1e6),
        cpu * 1e9 / lines as f64,
        hwm as f64 / 1024.0,
        hwm_med / 1024.0,
    );
    if !floor_secs.is_empty() {
        let floor_rate = lines as f64 / median(floor_secs);
        println!(
            "  floor (the same job with nothing else): {:.2} M lines/s; ratio {:.2}",
            floor_rate / 1e6,
            floor_rate / cat_rate
        );
    }
    if args.forward {
        let logged = |runs: &[&PidzeroRun]| {
            lines as f64 / median(runs.iter().map(|r| r.logged_secs).collect())
        };
        let file_only = logged(&runs.iter().collect::<Vec<_>>());
        let with_receiver = logged(&forwarded.iter().map(|(r, _)| r).collect::<Vec<_>>());
        let without = logged(&unreachable.iter().collect::<Vec<_>>());
        // Records the receiver got (daemon lines and events) per line sent.
        let share = median(forwarded.iter().map(|(_, got)| *got as f64 / lines as f64).collect());
        println!(
            "  file only (to the last exited event): {:.2} M lines/s\n  \
             file + forward to a local receiver: {:.2} M lines/s, {:.3} of file only; \
             receiver got {:.3} records per line\n  \
             file + forward, nothing listening: {:.2} M lines/s, {:.3} of file only",
            file_only / 1e6,
            with_receiver / 1e6,
            with_receiver / file_only,
            share,
            without / 1e6,
            without / file_only,
        );
    }
    true
}

/// A local port where nothing listens (bound, then closed): connections
/// are refused, as when a log receiver is down.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

/// pidzero with a forward sink to a receiver in this process, which reads
/// and counts lines until pidzero closes the connection; returns the run
/// and the records received.
fn run_forwarded(args: &Args, gens: usize, per_gen: u64) -> (PidzeroRun, u64) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut received = 0u64;
            let mut buf = vec![0u8; 256 * 1024];
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    received += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                }
            }
            received
        })
    };
    let run = run_pidzero(args, gens, per_gen, Forward::To(port));
    // pidzero has exited (its connection is closed): wake the accept.
    stop.store(true, Ordering::Relaxed);
    let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    (run, receiver.join().expect("receiver"))
}

/// Runs the floor program (which spawns the generators itself) to the same
/// kind of file, checks its records as pidzero's; returns the seconds.
fn run_floor(args: &Args, floor: &Path, gens: usize, per_gen: u64) -> f64 {
    let out = args.dir.join("floor.out");
    let _ = fs::remove_file(&out);
    let start = Instant::now();
    let status = Command::new(floor)
        .arg(&args.gen)
        .arg((per_gen * gens as u64).to_string())
        .arg(&out)
        .arg(gens.to_string())
        .arg(args.chunk.to_string())
        .stdout(Stdio::null())
        .status()
        .expect("spawn floor");
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success(), "floor failed: {status}");
    verify_pidzero_log(&out, gens, per_gen);
    fs::remove_file(&out).unwrap();
    secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn gen_id(i: usize) -> String {
    format!("g{i}")
}

/// All generators write into one pipe read by one `cat` writing one file, as
/// pidzero gathers them into one file; returns the seconds.
///
/// Each generator write is at most PIPE_BUF (4096) bytes, so the file is an
/// interleaving of whole writes; the check follows each generator's byte
/// stream through it.
fn run_cat(args: &Args, gens: usize, per_gen: u64) -> f64 {
    assert!(args.chunk <= 4096, "CHUNK above PIPE_BUF would tear in the cat run");
    let file = args.dir.join("cat.out");
    let out = fs::File::create(&file).expect("cat output");
    let start = Instant::now();
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(out)
        .spawn()
        .expect("spawn cat");
    let pipe = std::os::fd::OwnedFd::from(cat.stdin.take().unwrap());
    let mut children = Vec::new();
    for i in 0..gens {
        let gen = Command::new(&args.gen)
            .args([gen_id(i), per_gen.to_string(), args.chunk.to_string()])
            .stdout(pipe.try_clone().unwrap())
            .spawn()
            .expect("spawn gen");
        children.push(gen);
    }
    drop(pipe);
    children.push(cat);
    for mut child in children {
        assert!(child.wait().unwrap().success(), "gen or cat failed");
    }
    let secs = start.elapsed().as_secs_f64();
    let data = fs::read(&file).unwrap();
    let mut streams: Vec<Stream> = (0..gens).map(|i| Stream::new(&gen_id(i), per_gen)).collect();
    let mut pos = 0;
    while pos < data.len() {
        let k = streams
            .iter_mut()
            .position(|s| s.matches(&data[pos..], args.chunk))
            .unwrap_or_else(|| panic!("cat output: unexpected bytes at {pos}"));
        pos += streams[k].advance(args.chunk);
    }
    for s in streams {
        assert_eq!(s.offset, s.len, "cat output: bytes missing");
    }
    fs::remove_file(&file).unwrap();
    secs
}

/// One generator's byte stream, followed write by write.
struct Stream {
    seq: Sequence,
    line: Vec<u8>,
    offset: u64,
    len: u64,
}

impl Stream {
    fn new(id: &str, count: u64) -> Self {
        Stream {
            seq: Sequence::new(id, count),
            line: Vec::new(),
            offset: 0,
            len: count * LINE as u64,
        }
    }

    fn write_len(&self, chunk: usize) -> usize {
        (self.len - self.offset).min(chunk as u64) as usize
    }

    /// Is the next write of this generator at the start of `data`?
    fn matches(&mut self, data: &[u8], chunk: usize) -> bool {
        let n = self.write_len(chunk);
        if n == 0 || data.len() < n {
            return false;
        }
        let (mut done, mut offset) = (0, self.offset);
        while done < n {
            let at = (offset % LINE as u64) as usize;
            let take = (LINE - at).min(n - done);
            if data[done..done + take] != self.line_at(offset / LINE as u64)[at..at + take] {
                return false;
            }
            done += take;
            offset += take as u64;
        }
        true
    }

    /// Line `number` with its newline.
    fn line_at(&mut self, number: u64) -> &[u8] {
        if self.line.is_empty() || self.seq.next != number {
            self.seq.next = number;
            self.line = self.seq.expected().to_vec();
            self.line.push(b'\n');
        }
        &self.line
    }

    fn advance(&mut self, chunk: usize) -> usize {
        let n = self.write_len(chunk);
        self.offset += n as u64;
        n
    }
}

fn run_pidzero(args: &Args, gens: usize, per_gen: u64, forward: Forward) -> PidzeroRun {
    let conf = args.dir.join("conf");
    let _ = fs::remove_dir_all(&conf);
    fs::create_dir_all(&conf).unwrap();
    let log = args.dir.join("pidzero.log");
    let _ = fs::remove_file(&log);
    let daemons: Vec<String> = (0..gens)
        .map(|i| {
            format!(
                r#"{{"name":"{}","command":["{}","{}","{}","{}"]}}"#,
                gen_id(i),
                args.gen.display(),
                gen_id(i),
                per_gen,
                args.chunk
            )
        })
        .collect();
    fs::write(conf.join("daemons.json"), format!("[{}]", daemons.join(","))).unwrap();
    let forward = match forward {
        Forward::Off => String::new(),
        Forward::To(port) => format!(r#","forward":{{"address":"tcp://127.0.0.1:{port}"}}"#),
    };
    fs::write(
        conf.join("config.json"),
        format!(
            r#"{{"log":{{"format":"json","log_to_file":true,"log_to_stdout":false,"file_path":"{}","max_file_size":0{forward}}},"api":{{"socket":null}}}}"#,
            log.display()
        ),
    )
    .unwrap();
    let start = Instant::now();
    let start_ms = unix_ms();
    let child = Command::new(&args.pidzero)
        .arg("--config-dir")
        .arg(&conf)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn pidzero");
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let hwm = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, hwm) = (Arc::clone(&done), Arc::clone(&hwm));
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = fs::read_to_string(&path).ok().and_then(|s| vm_hwm(&s)) {
                    hwm.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut info = [0u8; 128];
    // SAFETY: `info` is as large as a siginfo_t; WNOWAIT leaves the zombie.
    let rc = unsafe { waitid(P_PID, pid, info.as_mut_ptr(), WEXITED | WNOWAIT) };
    assert_eq!(rc, 0, "waitid");
    let secs = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): utime is the 14th field.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { sysconf(SC_CLK_TCK) } as f64;
    let mut child = child;
    let status = child.wait().unwrap();
    assert!(status.success(), "pidzero failed: {status}");
    verify_pidzero_log(&log, gens, per_gen);
    let last_exit_ms = last_exited_ms(&log).expect("an exited event per generator");
    fs::remove_file(&log).unwrap();
    PidzeroRun {
        secs,
        logged_secs: last_exit_ms.saturating_sub(start_ms).max(1) as f64 / 1e3,
        cpu_secs: ticks as f64 / hz,
        hwm_kib: hwm.load(Ordering::Relaxed),
    }
}

/// Now, in milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.expect("clock after 1970").as_millis() as u64
}

/// The timestamp (ms since the epoch) of the last `exited` event in the log.
fn last_exited_ms(path: &Path) -> Option<u64> {
    let data = fs::read(path).ok()?;
    data.split(|&b| b == b'\n')
        .filter(|r| r.windows(16).any(|w| w == br#""event":"exited""#))
        .filter_map(|r| std::str::from_utf8(r.get(14..38)?).ok().and_then(parse_rfc3339_ms))
        .max()
}

/// `2026-11-28T14:09:00.123Z` → ms since the epoch (UTC, the only form
/// pidzero writes).
fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    // Days from civil (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs * 1000 + ms).ok()
}

fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line[6..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Checks the JSON records: pidzero's events are skipped (after a light check);
/// every daemon record must be exactly what the generator wrote, in order.
fn verify_pidzero_log(path: &Path, gens: usize, per_gen: u64) {
    let data = fs::read(path).unwrap();
    let mut checks: Vec<Sequence> = (0..gens).map(|i| Sequence::new(&gen_id(i), per_gen)).collect();
    let mut records = 0u64;
    for record in data.split(|&b| b == b'\n') {
        if record.is_empty() {
            continue;
        }
        records += 1;
        const HEAD: &[u8] = br#"{"timestamp":""#;
        assert!(record.starts_with(HEAD) && record.ends_with(b"}"), "bad record {}", show(record));
        let rest = &record[HEAD.len() + 24..];
        if rest.starts_with(br#"","source":"pidzero","stream":"event","#) {
            continue;
        }
        let rest = rest.strip_prefix(br#"","source":"g"#).unwrap_or_else(|| panic!("bad record {}", show(record)));
        let quote = rest.iter().position(|&b| b == b'"').unwrap();
        let i: usize = std::str::from_utf8(&rest[..quote]).unwrap().parse().unwrap();
        let rest = rest[quote..]
            .strip_prefix(br#"","stream":"stdout","line":""#)
            .and_then(|r| r.strip_suffix(br#""}"#))
            .unwrap_or_else(|| panic!("bad record {}", show(record)));
        checks[i].line(rest);
    }
    for check in checks {
        check.done();
    }
    assert!(records >= per_gen * gens as u64);
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned()
}

/// Expects `ID SEQ filler` lines with SEQ counting up from 0.
struct Sequence {
    template: Vec<u8>,
    digits: usize,
    next: u64,
    count: u64,
}

impl Sequence {
    fn new(id: &str, count: u64) -> Self {
        let mut template = Vec::new();
        template.extend_from_slice(id.as_bytes());
        template.push(b' ');
        let digits = template.len();
        template.extend_from_slice(b"0000000000 ");
        while template.len() < LINE - 1 {
            template.push(b'a' + (template.len() % 26) as u8);
        }
        Sequence { template, digits, next: 0, count }
    }

    /// The line numbered `self.next`, without its newline.
    fn expected(&mut self) -> &[u8] {
        let mut n = self.next;
        for slot in self.template[self.digits..self.digits + 10].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        &self.template
    }

    fn line(&mut self, line: &[u8]) {
        assert!(self.next < self.count, "extra line {}", show(line));
        let next = self.next;
        assert!(line == self.expected(), "line {next} expected, got {}", show(line));
        self.next += 1;
    }

    fn done(self) {
        assert_eq!(self.next, self.count, "lines missing");
    }
}
