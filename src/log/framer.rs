//! Pipe bytes → lines.
//!
//! A [`Framer`] is fed the chunks read from one pipe and appends the complete
//! lines to a [`LineBatch`]: the `\n` and a `\r` just before it are removed,
//! and a line longer than `max_line_bytes` is cut into pieces of at most
//! `max_line_bytes` where all but the last are marked `partial`. A cut falls
//! between two UTF-8 characters: up to 3 bytes before the limit when a
//! character straddles it (see `piece_end`), so the pieces of a valid line
//! are valid and join back to it. What follows the last newline of a chunk
//! is carried to the next one; the carry never holds more than
//! `max_line_bytes` (plus one held `\r`), so memory per pipe is bounded
//! whatever a daemon writes.
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
    /// The last span given out was a `partial` piece: the next line given
    /// out is the rest of that line (see [`LineBatch::continued`]).
    mid_line: bool,
}

impl Framer {
    /// A framer cutting lines at `max_line_bytes` (at least 1).
    pub fn new(max_line_bytes: usize) -> Self {
        Framer {
            max_line_bytes: max_line_bytes.max(1),
            carry: Vec::new(),
            mid_line: false,
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
        self.mark_start(batch);
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
        self.mark_start(batch);
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
        self.mark_start(batch);
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
        self.mid_line = false;
    }

    /// Marks whether a batch about to be framed from its start begins with
    /// the rest of a cut line.
    fn mark_start(&self, batch: &mut LineBatch) {
        if batch.data.is_empty() {
            batch.continues = self.mid_line;
        }
    }

    /// Turns `batch.data[start..]` (the carry and the new bytes) into spans
    /// in place; what follows the last line end or cut becomes the carry and
    /// is cut off the batch.
    ///
    /// One pass ([`for_each_newline`]) finds every newline; a line longer
    /// than `max` is cut into pieces of at most `max` between two newlines.
    /// A cut needs only the bytes up to the limit, which are all here
    /// whenever more than `max` bytes are, so it does not depend on how the
    /// stream was split into reads.
    fn frame(&mut self, batch: &mut LineBatch, start: usize) {
        debug_assert!(batch.data.len() <= u32::MAX as usize);
        let max = self.max_line_bytes;
        let (data, lines) = (&batch.data, &mut batch.lines);
        let first_new = lines.len();
        let len = data.len();
        let mut at = start;
        for_each_newline(&data[start..], |i| {
            let newline = start + i;
            if newline - at > max {
                at = cut_pieces(lines, data, at, newline, max);
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
        if len - at > max {
            at = cut_pieces(lines, data, at, len, max);
        }
        self.carry.extend_from_slice(&batch.data[at..]);
        batch.data.truncate(at);
        if lines.len() > first_new {
            self.mid_line = lines[lines.len() - 1].partial;
        }
    }
}

/// Pushes the partial pieces of the too long line that starts at `at` and
/// runs to `until` (its `\n`, or the end of the bytes read so far) until at
/// most `max` bytes are left; returns where the rest starts. A piece of
/// exactly `max` bytes followed by a `\r` just before `until` is left whole:
/// at a `\n` the line is then whole, at the end of a read the next byte
/// decides.
///
/// Out of line and cold: long lines are rare, and a smaller per-line
/// closure in [`Framer::frame`] stays inlined in the newline scan (framing
/// a line took about 20 instructions more when it did not).
#[cold]
#[inline(never)]
fn cut_pieces(
    lines: &mut Vec<LineSpan>,
    data: &[u8],
    mut at: usize,
    until: usize,
    max: usize,
) -> usize {
    while until - at > max {
        if data[at + max] == b'\r' && at + max + 1 == until {
            break;
        }
        let cut = piece_end(data, at, max);
        push_span(lines, at, cut, true);
        at = cut;
    }
    at
}

/// Where the piece of a too long line that starts at `at` ends: at the
/// limit `at + max`, unless a UTF-8 character straddles it; then at the start
/// of that character, at most 3 bytes earlier. `data` must hold the byte at
/// the limit.
///
/// Invalid data keeps the cut at the limit: continuation bytes with no lead
/// byte within 3 bytes (nothing there is a character), a lead byte whose
/// character ends before the limit, or a lead byte at `at` itself (a piece
/// is never empty; only a `max` under 4 makes that possible, and the
/// configuration asks for at least 64).
fn piece_end(data: &[u8], at: usize, max: usize) -> usize {
    let limit = at + max;
    let is_continuation = |b: u8| b & 0xc0 == 0x80;
    if !is_continuation(data[limit]) {
        return limit;
    }
    let earliest = limit.saturating_sub(3).max(at + 1);
    let Some(lead) = (earliest..limit).rev().find(|&i| !is_continuation(data[i])) else {
        return limit;
    };
    let char_len = match data[lead] {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    };
    if lead + char_len > limit {
        lead
    } else {
        limit
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
    use proptest::prelude::*;

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

    /// 21,000 bytes of `€` (3 bytes each) at the default limit: the cut
    /// falls one byte before 16,384, between two characters, so both
    /// pieces are whole UTF-8 (not ending and starting with U+FFFD).
    #[test]
    fn long_line_is_cut_between_characters() {
        let line = "\u{20ac}".repeat(7000);
        let text = format!("{line}\n");
        let got = frame(16384, &[text.as_bytes()]);
        assert_eq!(
            got,
            vec![
                ("\u{20ac}".repeat(5461), true),
                ("\u{20ac}".repeat(1539), false)
            ]
        );
    }

    #[test]
    fn cut_moves_back_to_the_start_of_a_character() {
        // 2, 3 and 4-byte characters straddling a cut at 4 bytes.
        assert_eq!(
            frame(4, &["ab\u{e9}\u{e9}\n".as_bytes()]),
            vec![("ab\u{e9}".into(), true), ("\u{e9}".into(), false)]
        );
        assert_eq!(
            frame(4, &["ab\u{20ac}x\n".as_bytes()]),
            vec![("ab".into(), true), ("\u{20ac}x".into(), false)]
        );
        assert_eq!(
            frame(4, &["a\u{1f600}b\n".as_bytes()]),
            vec![
                ("a".into(), true),
                ("\u{1f600}".into(), true),
                ("b".into(), false)
            ]
        );
        // Unterminated, cut while the rest is carried.
        assert_eq!(
            frame(4, &["abc".as_bytes(), "\u{20ac}".as_bytes()]),
            vec![("abc".into(), true), ("\u{20ac}".into(), false)]
        );
    }

    /// Bytes that are no character: no boundary within 3 bytes of the
    /// limit, so the cut stays at the limit; continuation bytes left over
    /// from a character that ended before the limit do not move it either.
    #[test]
    fn invalid_utf8_is_cut_at_the_limit() {
        let mut framer = Framer::new(4);
        let mut b = batch();
        framer.push(b"a\x80\x80\x80\x80\x80\nb\xc3\xa9\x80\x80\n", &mut b);
        let pieces: Vec<(&[u8], bool)> = b.lines.iter().map(|&s| (b.line(s), s.partial)).collect();
        assert_eq!(
            pieces,
            vec![
                (&b"a\x80\x80\x80"[..], true),
                (b"\x80\x80", false),
                (b"b\xc3\xa9\x80", true),
                (b"\x80", false),
            ]
        );
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

    /// A stream of letters, line ends (`\n`, `\r\n`, a lone `\r`), 2, 3 and
    /// 4-byte characters and, unless `valid`, arbitrary bytes.
    fn stream(valid: bool) -> impl Strategy<Value = Vec<u8>> {
        const TOKENS: &[&str] = &[
            "a",
            "bc",
            "\n",
            "\r\n",
            "\r",
            "\u{e9}",
            "\u{20ac}",
            "\u{1f600}",
        ];
        let tokens = prop::collection::vec((0..TOKENS.len() + 1, any::<u8>()), 0..120);
        tokens.prop_map(move |picks| {
            let mut bytes = Vec::new();
            for (pick, byte) in picks {
                match TOKENS.get(pick) {
                    Some(token) => bytes.extend_from_slice(token.as_bytes()),
                    None if valid => bytes.push(b'z'),
                    None => bytes.push(byte),
                }
            }
            bytes
        })
    }

    /// The pieces (bytes, partial) the framer gives for `bytes` read in
    /// chunks cut at `cuts`, each framed as the reader does (straight into
    /// the batch's buffer) or through [`Framer::push`], as `direct` says.
    fn pieces(max: usize, bytes: &[u8], cuts: &[usize], direct: &[bool]) -> Vec<(Vec<u8>, bool)> {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        let mut collect = |b: &LineBatch| {
            out.extend(b.lines.iter().map(|&s| (b.line(s).to_vec(), s.partial)));
        };
        let mut from = 0;
        for (i, &to) in cuts.iter().enumerate() {
            let chunk = &bytes[from..to];
            from = to;
            let mut b = batch();
            if direct.get(i).copied().unwrap_or(false) {
                let room = framer.carry_len();
                b.data.reserve(room + chunk.len());
                let spare = &mut b.data.spare_capacity_mut()[room..room + chunk.len()];
                for (slot, &byte) in spare.iter_mut().zip(chunk) {
                    slot.write(byte);
                }
                // SAFETY: the `chunk.len()` bytes after the room for the
                // carry were just written.
                unsafe { framer.frame_read(&mut b, chunk.len()) };
            } else {
                framer.push(chunk, &mut b);
            }
            collect(&b);
        }
        let mut b = batch();
        framer.finish(&mut b);
        collect(&b);
        out
    }

    /// SPEC §7: every `\n` ends a line, without the `\n` and one `\r`
    /// before it; a last line without `\n` is emitted as it is, unless empty.
    fn spec_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut parts: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let last = parts.pop().unwrap_or_default();
        let mut lines: Vec<Vec<u8>> = parts
            .into_iter()
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .collect();
        if !last.is_empty() {
            lines.push(last.to_vec());
        }
        lines
    }

    /// The pieces joined into lines: each line is its partial pieces and
    /// the whole one that ends it.
    fn joined(pieces: &[(Vec<u8>, bool)]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut line = Vec::new();
        for (bytes, partial) in pieces {
            line.extend_from_slice(bytes);
            if !partial {
                lines.push(std::mem::take(&mut line));
            }
        }
        assert!(line.is_empty(), "a partial piece ends the stream");
        lines
    }

    proptest! {
        /// Any bytes, read in any chunks: the records are those of one read,
        /// no piece is over the limit, and the pieces join into the lines
        /// of SPEC §7 (`\r\n`, a last line without `\n`).
        #[test]
        fn any_chunking_gives_the_lines_of_one_read(
            max in 1usize..24,
            bytes in stream(false),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            direct in prop::collection::vec(any::<bool>(), 0..9),
        ) {
            let whole = pieces(max, &bytes, &[], &[]);
            let split = pieces(max, &bytes, &cuts, &direct);
            prop_assert_eq!(&split, &whole);
            for (piece, _) in &whole {
                prop_assert!(piece.len() <= max, "{} > {max}", piece.len());
            }
            prop_assert_eq!(joined(&whole), spec_lines(&bytes));
        }

        /// Valid UTF-8 with a limit of at least one character: every piece
        /// is valid UTF-8 and the pieces join back to the line exactly.
        #[test]
        fn pieces_of_valid_utf8_are_valid(
            max in 4usize..24,
            bytes in stream(true),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let got = pieces(max, &bytes, &cuts, &[]);
            for (piece, _) in &got {
                prop_assert!(std::str::from_utf8(piece).is_ok(), "{:?}", piece);
                prop_assert!(piece.len() <= max);
            }
            prop_assert_eq!(joined(&got), spec_lines(&bytes));
        }
    }
}
