//! Pipe bytes → lines.
//!
//! A [`Framer`] is fed the chunks read from one pipe and appends the complete
//! lines to a [`LineBatch`]: the `\n` and a `\r` just before it are removed,
//! and a line longer than `max_line_bytes` is cut into pieces of exactly
//! `max_line_bytes` where all but the last are marked `partial`. What follows
//! the last newline of a chunk is carried to the next one; the carry never
//! holds more than `max_line_bytes`, so memory per pipe is bounded whatever a
//! daemon writes.
//!
//! Copies: the bytes of a line that ends within the chunk it started in are
//! copied once (read buffer → batch). Only a line spread over several reads is
//! copied twice (read buffer → carry → batch).

use memchr::memchr;

use super::record::{LineBatch, LineSpan};

/// Splits one stream into lines; see the module docs.
#[derive(Debug)]
pub struct Framer {
    max_line_bytes: usize,
    /// The start of the current, unfinished line (at most `max_line_bytes`).
    carry: Vec<u8>,
    /// The carry is full and a `\r` came right after it: a `\n` next ends the
    /// line there, anything else makes the carry a partial piece. Kept as a
    /// flag so the carry never exceeds `max_line_bytes`.
    held_cr: bool,
}

impl Framer {
    /// A framer cutting lines at `max_line_bytes` (at least 1).
    pub fn new(max_line_bytes: usize) -> Self {
        Framer {
            max_line_bytes: max_line_bytes.max(1),
            carry: Vec::new(),
            held_cr: false,
        }
    }

    /// Bytes of the unfinished line kept for the next chunk (a held `\r` is a flag).
    pub fn carried(&self) -> usize {
        self.carry.len()
    }

    /// Appends the lines completed by `chunk` to `batch` and keeps the rest.
    ///
    /// `batch.data` must stay below 4 GiB (spans are `u32`); the readers push
    /// one read of at most 64 KiB per batch.
    pub fn push(&mut self, mut chunk: &[u8], batch: &mut LineBatch) {
        batch.data.reserve(chunk.len() + self.carry.len());
        while !chunk.is_empty() {
            chunk = if self.held_cr {
                self.resolve_held_cr(chunk, batch)
            } else {
                self.step(chunk, batch)
            };
        }
    }

    /// Emits the unterminated last line (at EOF), if any.
    pub fn finish(&mut self, batch: &mut LineBatch) {
        if self.held_cr {
            self.held_cr = false;
            self.emit(batch, &[], true);
            self.carry.push(b'\r');
        }
        if !self.carry.is_empty() {
            self.emit(batch, &[], false);
        }
    }

    /// Consumes up to one line end or one cut from `chunk`; returns the rest.
    fn step<'c>(&mut self, chunk: &'c [u8], batch: &mut LineBatch) -> &'c [u8] {
        let room = self.max_line_bytes - self.carry.len();
        // One byte past `room`: a line exactly `max_line_bytes` long ends there.
        let window = &chunk[..chunk.len().min(room + 1)];
        if let Some(newline) = memchr(b'\n', window) {
            self.emit_complete(batch, &window[..newline]);
            return &chunk[newline + 1..];
        }
        if window.len() <= room {
            // The chunk ends inside the line: carry it over.
            self.carry.extend_from_slice(window);
            return &chunk[window.len()..];
        }
        // The line goes past the limit: `window[room]` is not a newline.
        let (fill, rest) = chunk.split_at(room);
        if rest[0] != b'\r' {
            self.emit(batch, fill, true);
            return rest;
        }
        match rest.get(1) {
            Some(b'\n') => {
                self.emit(batch, fill, false);
                &rest[2..]
            }
            Some(_) => {
                self.emit(batch, fill, true);
                rest
            }
            None => {
                self.carry.extend_from_slice(fill);
                self.held_cr = true;
                &rest[1..]
            }
        }
    }

    /// The first byte after a full carry followed by a held `\r` decides.
    fn resolve_held_cr<'c>(&mut self, chunk: &'c [u8], batch: &mut LineBatch) -> &'c [u8] {
        self.held_cr = false;
        if chunk.first() == Some(&b'\n') {
            self.emit(batch, &[], false);
            return &chunk[1..];
        }
        self.emit(batch, &[], true);
        self.carry.push(b'\r');
        chunk
    }

    /// Emits carry + `tail` as a line that ended with `\n`, dropping a `\r` before it.
    fn emit_complete(&mut self, batch: &mut LineBatch, tail: &[u8]) {
        match tail.split_last() {
            Some((b'\r', head)) => self.emit(batch, head, false),
            Some(_) => self.emit(batch, tail, false),
            None => {
                if self.carry.last() == Some(&b'\r') {
                    self.carry.pop();
                }
                self.emit(batch, &[], false);
            }
        }
    }

    /// Appends carry + `tail` to the batch as one span and empties the carry.
    fn emit(&mut self, batch: &mut LineBatch, tail: &[u8], partial: bool) {
        let start = batch.data.len();
        batch.data.extend_from_slice(&self.carry);
        batch.data.extend_from_slice(tail);
        self.carry.clear();
        debug_assert!(batch.data.len() <= u32::MAX as usize);
        batch.lines.push(LineSpan {
            start: start as u32,
            end: batch.data.len() as u32,
            partial,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::Stream;

    fn batch() -> LineBatch {
        LineBatch::new("t".into(), Stream::Stdout, *b"2026-11-28T14:09:00.123Z")
    }

    /// Pushes `chunks` (each into its own batch), then finishes; returns
    /// (line, partial) pairs and checks the carry bound after every push.
    fn frame(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        let mut collect = |b: &LineBatch| {
            for &span in &b.lines {
                out.push((
                    String::from_utf8_lossy(b.line(span)).into_owned(),
                    span.partial,
                ));
            }
        };
        for chunk in chunks {
            let mut b = batch();
            framer.push(chunk, &mut b);
            assert!(
                framer.carried() <= max,
                "carry {} > {max}",
                framer.carried()
            );
            collect(&b);
        }
        let mut b = batch();
        framer.finish(&mut b);
        collect(&b);
        out
    }

    fn whole(lines: &[&str]) -> Vec<(String, bool)> {
        lines.iter().map(|l| (l.to_string(), false)).collect()
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        assert_eq!(
            frame(100, &[b"a\nbb\r\n\nc\rd\n"]),
            whole(&["a", "bb", "", "c\rd"])
        );
    }

    #[test]
    fn joins_lines_split_across_chunks() {
        assert_eq!(
            frame(100, &[b"hel", b"lo wo", b"rld\nnext", b"\r", b"\nlast"]),
            whole(&["hello world", "next", "last"])
        );
    }

    #[test]
    fn finish_emits_unterminated_line_only_once() {
        let mut framer = Framer::new(10);
        let mut b = batch();
        framer.push(b"x\ny", &mut b);
        framer.finish(&mut b);
        framer.finish(&mut b);
        assert_eq!(b.lines.len(), 2);
        assert_eq!(b.line(b.lines[1]), b"y");
    }

    #[test]
    fn cuts_long_lines_into_partial_pieces() {
        assert_eq!(
            frame(4, &[b"abcdefghij\nxy\n"]),
            vec![
                ("abcd".into(), true),
                ("efgh".into(), true),
                ("ij".into(), false),
                ("xy".into(), false)
            ]
        );
    }

    #[test]
    fn line_of_exactly_max_bytes_is_whole() {
        assert_eq!(frame(4, &[b"abcd\nefgh\r\n"]), whole(&["abcd", "efgh"]));
        assert_eq!(
            frame(4, &[b"abcdefgh\n"]),
            vec![("abcd".into(), true), ("efgh".into(), false)]
        );
        // The same, byte by byte: the decision must not depend on chunking.
        let bytes = b"abcd\nefgh\r\nijklm\r\nnopq\rr\n";
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        let expected = vec![
            ("abcd".into(), false),
            ("efgh".into(), false),
            ("ijkl".into(), true),
            ("m".into(), false),
            ("nopq".into(), true),
            ("\rr".into(), false),
        ];
        assert_eq!(frame(4, &chunks), expected);
        assert_eq!(frame(4, &[bytes]), expected);
    }

    #[test]
    fn carry_stays_bounded_for_endless_line() {
        let chunk = [b'z'; 1000];
        let chunks: Vec<&[u8]> = vec![&chunk; 50];
        let lines = frame(64, &chunks);
        assert_eq!(lines.len(), 50_000 / 64 + 1);
        assert!(lines[..lines.len() - 1]
            .iter()
            .all(|(l, p)| l.len() == 64 && *p));
        assert_eq!(lines.last().unwrap(), &("z".repeat(50_000 % 64), false));
    }

    #[test]
    fn held_cr_at_eof_is_kept() {
        assert_eq!(
            frame(2, &[b"ab\r"]),
            vec![("ab".into(), true), ("\r".into(), false)]
        );
    }

    #[test]
    fn every_chunking_gives_the_same_lines() {
        let bytes = b"one\r\ntwo is long\n\nthree\rx\r\n\r\nfour".as_slice();
        let reference = frame(5, &[bytes]);
        for cut in 0..bytes.len() {
            for cut2 in cut..bytes.len() {
                let chunks = [&bytes[..cut], &bytes[cut..cut2], &bytes[cut2..]];
                assert_eq!(frame(5, &chunks), reference, "cuts {cut} {cut2}");
            }
        }
    }
}
