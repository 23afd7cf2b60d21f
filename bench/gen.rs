//! Benchmark generator: writes COUNT numbered lines of exactly 100 bytes to
//! stdout, `ID SEQUENCE xxx…\n`, in writes of CHUNK bytes (default 4096, what
//! C stdio uses for a pipe), then exits.
//!
//! Usage: gen ID COUNT [CHUNK]. No dependencies: `rustc -O bench/gen.rs`.

use std::io::Write;
use std::os::fd::FromRawFd;

/// Line length including the newline.
pub const LINE: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: gen ID COUNT [CHUNK]");
        std::process::exit(2);
    }
    let id = &args[1];
    let count: u64 = args[2].parse().expect("COUNT");
    let chunk: usize = args.get(3).map_or(4096, |c| c.parse().expect("CHUNK"));
    // `ID ` + 10 digits + ` ` + filler up to 99 bytes + `\n`.
    let mut template = Vec::with_capacity(LINE);
    template.extend_from_slice(id.as_bytes());
    template.push(b' ');
    let digits = template.len();
    template.extend_from_slice(b"0000000000 ");
    while template.len() < LINE - 1 {
        template.push(b'a' + (template.len() % 26) as u8);
    }
    template.push(b'\n');
    assert_eq!(template.len(), LINE, "ID too long");
    // SAFETY: fd 1 is open for the life of the process; never closed twice
    // because the File is forgotten at the end.
    let mut out = unsafe { std::fs::File::from_raw_fd(1) };
    let mut buf: Vec<u8> = Vec::with_capacity(chunk + LINE);
    for seq in 0..count {
        let mut n = seq;
        for slot in template[digits..digits + 10].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        buf.extend_from_slice(&template);
        if buf.len() >= chunk {
            out.write_all(&buf[..chunk]).expect("write");
            buf.drain(..chunk);
        }
    }
    out.write_all(&buf).expect("write");
    std::mem::forget(out);
}
