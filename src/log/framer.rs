//! Pipe bytes → lines.
//!
//! A [`Framer`] is fed the chunks read from one pipe and appends the complete
//! lines to a [`LineBatch`]: the `\n` and a `\r` just before it are removed,
//! and a line longer than `max_line_bytes` is cut into pieces of exactly
//! `max_line_bytes` where all but the last are marked `partial`. What follows
//! the last newline of a chunk is carried to the next one; the carry never
//! holds more than `max_line_bytes` (plus one held `\r`), so memory per pipe
//! is bounded whatever a daemon writes.
//!
//! Copies: the reader reads straight into a batch's buffer (see
//! [`Framer::frame_read`]), so the bytes of a line that ends within the read
//! it started in are never copied here; spans point into that buffer. Only
//! the unfinished line at the end of a read is copied, to the carry and then
//! to the front of the next batch.

use super::record::{LineBatch, LineSpan};
use super::scan::for_each_newline;

/// Splits one stream into lines; see the module docs.
#[derive(Debug)]
pub struct Framer {
    max_line_bytes: usize,
    /// The start of the current, unfinished line: at most `max_line_bytes`,
    /// plus one `\r` when a full piece was followed by a `\r` at the end of a
    /// read (a `\n` next ends the line there, anything else makes the piece
    /// partial and starts the next one with that `\r`).
    carry: Vec<u8>,
}

impl Framer {
    /// A framer cutting lines at `max_line_bytes` (at least 1).
    pub fn new(max_line_bytes: usize) -> Self {
        Framer {
            max_line_bytes: max_line_bytes.max(1),
            carry: Vec::new(),
        }
    }

    /// Bytes of the unfinished line kept for the next chunk (at most
    /// `max_line_bytes`; a held `\r` past the limit is not counted).
    pub fn carried(&self) -> usize {
        self.carry.len().min(self.max_line_bytes)
    }

    /// Bytes a read must leave free at the start of a batch's buffer for
    /// [`Framer::frame_read`] (at most `max_line_bytes + 1`).
    pub fn carry_len(&self) -> usize {
        self.carry.len()
    }

    /// Appends the lines completed by `chunk` to `batch` and keeps the rest.
    ///
    /// `batch.data` must stay below 4 GiB (spans are `u32`).
    pub fn push(&mut self, chunk: &[u8], batch: &mut LineBatch) {
        let start = batch.data.len();
        batch.data.reserve(self.carry.len() + chunk.len());
        batch.data.extend_from_slice(&self.carry);
        self.carry.clear();
        batch.data.extend_from_slice(chunk);
        self.frame(batch, start);
    }

    /// Frames a read made straight into an empty batch's buffer: `batch.data`
    /// is empty and its spare capacity holds [`Framer::carry_len`] bytes of
    /// room, then the `n` bytes read. Puts the carry in that room and frames
    /// the whole.
    ///
    /// # Safety
    ///
    /// The `n` bytes after the first `carry_len()` bytes of the spare
    /// capacity of `batch.data` must be initialized (written by the read).
    pub unsafe fn frame_read(&mut self, batch: &mut LineBatch, n: usize) {
        let carried = self.carry.len();
        assert!(batch.data.is_empty() && batch.data.capacity() >= carried + n);
        // Within capacity: no reallocation, so the bytes read stay in place.
        batch.data.extend_from_slice(&self.carry);
        self.carry.clear();
        // SAFETY: the carry was just written before them, and the caller
        // guarantees the `n` bytes read after it are initialized.
        unsafe { batch.data.set_len(carried + n) };
        self.frame(batch, 0);
    }

    /// Emits the unterminated last line (at EOF), if any.
    pub fn finish(&mut self, batch: &mut LineBatch) {
        if self.carry.is_empty() {
            return;
        }
        let start = batch.data.len();
        batch.data.extend_from_slice(&self.carry);
        self.carry.clear();
        let end = batch.data.len();
        if end - start > self.max_line_bytes {
            // A full piece and the `\r` held after it.
            let cut = start + self.max_line_bytes;
            push_span(&mut batch.lines, start, cut, true);
            push_span(&mut batch.lines, cut, end, false);
        } else {
            push_span(&mut batch.lines, start, end, false);
        }
    }

    /// Turns `batch.data[start..]` (the carry and the new bytes) into spans
    /// in place; what follows the last line end or cut becomes the carry and
    /// is cut off the batch.
    ///
    /// One pass ([`for_each_newline`]) finds every newline; a line longer
    /// than `max` is cut into pieces of `max` between two newlines.
    fn frame(&mut self, batch: &mut LineBatch, start: usize) {
        debug_assert!(batch.data.len() <= u32::MAX as usize);
        let max = self.max_line_bytes;
        let (data, lines) = (&batch.data, &mut batch.lines);
        let len = data.len();
        let mut at = start;
        for_each_newline(&data[start..], |i| {
            let newline = start + i;
            // A line too long ends in pieces of `max`; one of exactly `max`
            // bytes and then `\r\n` is whole.
            while newline - at > max {
                if data[at + max] == b'\r' && at + max + 1 == newline {
                    break;
                }
                push_span(lines, at, at + max, true);
                at += max;
            }
            let end = if newline > at && data[newline - 1] == b'\r' {
                newline - 1
            } else {
                newline
            };
            push_span(lines, at, end, false);
            at = newline + 1;
        });
        // After the last newline: whole pieces go now, the rest is carried.
        while len - at > max {
            if data[at + max] == b'\r' && at + max + 1 == len {
                break; // decided by the next byte
            }
            push_span(lines, at, at + max, true);
            at += max;
        }
        self.carry.extend_from_slice(&batch.data[at..]);
        batch.data.truncate(at);
    }
}

fn push_span(lines: &mut Vec<LineSpan>, start: usize, end: usize, partial: bool) {
    debug_assert!(end <= u32::MAX as usize);
    lines.push(LineSpan {
        start: start as u32,
        end: end as u32,
        partial,
    });
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
