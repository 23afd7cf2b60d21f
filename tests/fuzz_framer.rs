//! Fuzzing the framer on the stable toolchain: a seeded random driver that
//! mutates the committed corpus (`tests/corpus/framer/`), feeds each stream
//! to a `Framer` in random reads with a random `max_line_bytes`, and checks
//! SPEC §7 against a plain model: the same pieces whatever the reads, no
//! piece over the limit, pieces of valid UTF-8 valid, and the pieces joined
//! give the lines (`\n` removed with one `\r` before it, a last line without
//! `\n` kept).
//!
//! The normal test run is a smoke of a few thousand streams. A long run:
//! `PIDZERO_FUZZ_ITERS=2000000 PIDZERO_FUZZ_SEED=3 cargo test --release --test fuzz_framer`.

mod common;

use std::sync::Arc;

use common::fuzz::{self, Rng};

use pidzero::log::framer::Framer;
use pidzero::log::record::{LineBatch, Stream};

/// Bytes that make framing interesting: line ends, UTF-8 lead and
/// continuation bytes, invalid bytes.
const SPICE: &[&[u8]] = &[
    b"\n",
    b"\r",
    b"\r\n",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\xc3\xa9",
    b"\xe2\x82",
    b"\x80",
    b"\xff",
    b"\x00",
    b"\n\n\n",
    b"x",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(6) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            1 => {
                let spice = SPICE[rng.below(SPICE.len())];
                out.splice(at..at, spice.iter().copied());
            }
            2 if at < out.len() => {
                let end = (at + rng.below(64)).min(out.len());
                out.drain(at..end);
            }
            3 => out.truncate(at),
            _ => {
                let from = rng.below(out.len() + 1);
                let to = (from + rng.below(256)).min(out.len());
                let piece = out[from..to].to_vec();
                out.splice(at..at, piece);
            }
        }
    }
    out
}

/// The framer's pieces for `bytes` read in the chunks that end at `cuts`.
fn frame(max: usize, bytes: &[u8], cuts: &[usize]) -> Vec<(Vec<u8>, bool)> {
    let mut framer = Framer::new(max);
    let mut out = Vec::new();
    let mut take = |batch: &LineBatch| {
        for &span in &batch.lines {
            out.push((batch.line(span).to_vec(), span.partial));
        }
    };
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let end = cut.clamp(start, bytes.len());
        let mut batch = LineBatch::new(Arc::from("d"), Stream::Stdout, [b'0'; 24]);
        framer.push(&bytes[start..end], &mut batch);
        take(&batch);
        start = end;
    }
    let mut batch = LineBatch::new(Arc::from("d"), Stream::Stdout, [b'0'; 24]);
    framer.finish(&mut batch);
    take(&batch);
    out
}

/// SPEC §7's lines of a stream, as bytes: each `\n` ends a line (one `\r`
/// before it removed); the text after the last `\n` is a line as it is,
/// unless empty.
fn spec_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut parts: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let tail = parts.pop().unwrap_or_default();
    let mut lines: Vec<Vec<u8>> = parts
        .iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .collect();
    if !tail.is_empty() {
        lines.push(tail.to_vec());
    }
    lines
}

/// The pieces joined into whole lines (a piece ends a line unless partial).
fn joined(pieces: &[(Vec<u8>, bool)]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut current = Vec::new();
    for (piece, partial) in pieces {
        current.extend_from_slice(piece);
        if !partial {
            lines.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/framer");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Why the framer's answer for `bytes` breaks SPEC §7, if it does.
fn verdict(rng: &mut Rng, bytes: &[u8]) -> Option<String> {
    let max = match rng.below(3) {
        0 => 1 + rng.below(8),
        1 => 4 + rng.below(64),
        _ => 16384,
    };
    let mut cuts: Vec<usize> = (0..rng.below(12))
        .map(|_| rng.below(bytes.len() + 1))
        .collect();
    cuts.sort_unstable();
    let whole = frame(max, bytes, &[]);
    let split = frame(max, bytes, &cuts);
    if split != whole {
        return Some(format!(
            "max {max}, reads ending at {cuts:?}: other pieces than one read"
        ));
    }
    if let Some((piece, _)) = whole.iter().find(|(p, _)| p.len() > max) {
        return Some(format!("max {max}: a piece of {} bytes", piece.len()));
    }
    if joined(&whole) != spec_lines(bytes) {
        return Some(format!("max {max}: the pieces do not join into the lines"));
    }
    let lines = spec_lines(bytes);
    if max >= 4 && lines.iter().all(|l| std::str::from_utf8(l).is_ok()) {
        if let Some((piece, _)) = whole.iter().find(|(p, _)| std::str::from_utf8(p).is_err()) {
            return Some(format!(
                "max {max}: a piece of valid text is not valid: {piece:?}"
            ));
        }
    }
    None
}

#[test]
fn framer_survives_mutated_streams() {
    let iters = fuzz::iterations(3000);
    let seed = fuzz::seed(0x5eed_f4a3_e400_0001);
    let mut rng = Rng(seed);
    let seeds = corpus();
    for i in 0..iters {
        let base = &seeds[rng.below(seeds.len())];
        let bytes = mutate(&mut rng, base);
        if let Some(why) = verdict(&mut rng, &bytes) {
            panic!(
                "iteration {i} (seed {seed}): {why}\nstream: {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[test]
fn every_seed_frames_as_specified() {
    let mut rng = Rng(1);
    for bytes in corpus() {
        assert_eq!(verdict(&mut rng, &bytes), None);
    }
}
