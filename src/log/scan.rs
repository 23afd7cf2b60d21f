//! The byte scans of the log pipeline's hot loops, in one place: where the
//! framer finds newlines and where the formats find the bytes they must
//! escape.
//!
//! Each scan has a plain scalar version, one byte at a time, which is the
//! reference: every faster version must give exactly its answer. Which
//! version runs is a [`Scanner`]; [`Scanner::best`] is the fastest this CPU
//! runs, and the module's free functions use it (or [`Scanner::baseline`]
//! where nothing beyond the baseline helps). Tests run every scanner the
//! machine has ([`Scanner::all`], which includes the scalar and the portable
//! ones everywhere) and compare it with the scalar one, so that the versions
//! a machine does not pick for itself are still exercised on it.
//!
//! Why the SIMD: on lines of 100 bytes a `memchr` call per line spends more
//! on the call than on the search, and the JSON "nothing to escape" test is
//! a third of the time spent formatting a line (`bench/micro`).

use memchr::memchr_iter;

/// Bytes JSON copies as they are: ASCII from space up, except `"` and `\`.
/// Bytes of 0x80 and above are not plain: they go through lossy UTF-8
/// decoding.
pub const fn is_json_plain(b: u8) -> bool {
    b >= 0x20 && b < 0x80 && b != b'"' && b != b'\\'
}

/// Bytes the map and text formats copy as they are: printable ASCII, space
/// and tab (not DEL, other C0 controls, or bytes of 0x80 and above).
pub const fn is_text_plain(b: u8) -> bool {
    (b >= 0x20 && b < 0x7f) || b == b'\t'
}

/// [`is_json_plain`] as a table, for the bytes after the SIMD blocks.
const JSON_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_json_plain(b as u8);
        b += 1;
    }
    table
};

/// [`is_text_plain`] as a table.
const TEXT_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_text_plain(b as u8);
        b += 1;
    }
    table
};

/// Calls `f` with the offset of every `\n` in `bytes`, in order, with the
/// best scanner of this CPU.
pub fn for_each_newline(bytes: &[u8], f: impl FnMut(usize)) {
    Scanner::best().for_each_newline(bytes, f);
}

/// Length of the leading run of [`is_json_plain`] bytes of `bytes`.
///
/// With the baseline scanner: no version needs more than SSE2, so there is
/// no run-time check on this path, which runs once per escaped byte.
pub fn json_plain_prefix(bytes: &[u8]) -> usize {
    Scanner::baseline().json_plain_prefix(bytes)
}

/// True when every byte of `bytes` is [`is_json_plain`] or `\n`: a batch of
/// lines that JSON copies as they are; with the best scanner of this CPU.
pub fn is_json_plain_text(bytes: &[u8]) -> bool {
    Scanner::best().is_json_plain_text(bytes)
}

/// Length of the leading run of [`is_text_plain`] bytes of `bytes`.
///
/// Scalar only: map and text are read by people, at rates where this loop
/// does not matter.
pub fn text_plain_prefix(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| !TEXT_PLAIN[usize::from(b)])
        .unwrap_or(bytes.len())
}

/// Which version of the scans runs. Holding one means this CPU can run it:
/// only [`Scanner::best`] and [`Scanner::all`] give one that needs a feature
/// found at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanner(Kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One byte at a time: the reference.
    Scalar,
    /// No target feature: SWAR (8 bytes a step in a `u64`) and `memchr`;
    /// what a CPU other than x86-64 runs.
    Portable,
    /// 16 bytes a step; every x86-64 CPU has SSE2.
    #[cfg(target_arch = "x86_64")]
    Sse2,
    /// 32 or 64 bytes a step, when the CPU has AVX2 (checked at run time).
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Scanner {
    /// The reference scans, one byte at a time.
    pub const SCALAR: Scanner = Scanner(Kind::Scalar);

    /// The scans that need no target feature at all.
    pub const PORTABLE: Scanner = Scanner(Kind::Portable);

    /// The fastest scanner every CPU of this architecture runs: SSE2 on
    /// x86-64, else the portable one.
    pub const fn baseline() -> Scanner {
        #[cfg(target_arch = "x86_64")]
        return Scanner(Kind::Sse2);
        #[cfg(not(target_arch = "x86_64"))]
        return Scanner::PORTABLE;
    }

    /// The fastest scanner this CPU runs (the feature check is cached by the
    /// standard library: an atomic load).
    pub fn best() -> Scanner {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Scanner(Kind::Avx2);
        }
        Scanner::baseline()
    }

    /// Every scanner this CPU runs, the scalar reference first.
    pub fn all() -> Vec<Scanner> {
        let mut all = vec![Scanner::SCALAR, Scanner::PORTABLE];
        #[cfg(target_arch = "x86_64")]
        {
            all.push(Scanner(Kind::Sse2));
            if std::arch::is_x86_feature_detected!("avx2") {
                all.push(Scanner(Kind::Avx2));
            }
        }
        all
    }

    /// Calls `f` with the offset of every `\n` in `bytes`, in order.
    ///
    /// AVX2 gives every newline of 64 bytes in one bit mask, which on lines
    /// of 100 bytes beats a `memchr` call per line: framing a line went from
    /// about 10.5 to 7 ns (`bench/micro`). Without AVX2, and for the bytes
    /// after the last whole block, `memchr_iter` (itself vectorised).
    pub fn for_each_newline(self, bytes: &[u8], mut f: impl FnMut(usize)) {
        let done = match self.0 {
            Kind::Scalar => {
                for (i, &b) in bytes.iter().enumerate() {
                    if b == b'\n' {
                        f(i);
                    }
                }
                return;
            }
            // SAFETY: a scanner of this kind is only made once the CPU is
            // known to have AVX2 (`best`, `all`).
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2 => unsafe { newline_blocks_avx2(bytes, &mut f) },
            _ => 0,
        };
        for i in memchr_iter(b'\n', &bytes[done..]) {
            f(done + i);
        }
    }

    /// Length of the leading run of [`is_json_plain`] bytes of `bytes`.
    pub fn json_plain_prefix(self, bytes: &[u8]) -> usize {
        let done = match self.0 {
            Kind::Scalar => {
                return bytes
                    .iter()
                    .position(|&b| !is_json_plain(b))
                    .unwrap_or(bytes.len())
            }
            Kind::Portable => json_plain_prefix_swar(bytes),
            // No AVX2 version: runs are short between escapes, so the
            // wider step would rarely pay.
            #[cfg(target_arch = "x86_64")]
            Kind::Sse2 | Kind::Avx2 => json_plain_prefix_sse2(bytes),
        };
        done + plain_prefix_from_table(&bytes[done..], &JSON_PLAIN)
    }

    /// True when every byte of `bytes` is [`is_json_plain`] or `\n`.
    pub fn is_json_plain_text(self, bytes: &[u8]) -> bool {
        let done = match self.0 {
            Kind::Scalar => return bytes.iter().all(|&b| b == b'\n' || is_json_plain(b)),
            // No SWAR version: `\n` allowed among the controls costs as
            // much in a `u64` as the table does.
            Kind::Portable => 0,
            #[cfg(target_arch = "x86_64")]
            Kind::Sse2 => json_plain_text_sse2(bytes),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2 => {
                // SAFETY: a scanner of this kind is only made once the CPU
                // is known to have AVX2 (`best`, `all`).
                let done = unsafe { json_plain_text_avx2(bytes) };
                done + json_plain_text_sse2(&bytes[done..])
            }
        };
        bytes[done..]
            .iter()
            .all(|&b| b == b'\n' || JSON_PLAIN[usize::from(b)])
    }
}

/// The length of the leading run of bytes marked plain in `table`.
fn plain_prefix_from_table(bytes: &[u8], table: &[bool; 256]) -> usize {
    bytes
        .iter()
        .position(|&b| !table[usize::from(b)])
        .unwrap_or(bytes.len())
}

/// [`Scanner::for_each_newline`] over the whole blocks of 64 bytes of
/// `bytes`; returns how many bytes it covered.
///
/// # Safety
///
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn newline_blocks_avx2(bytes: &[u8], f: &mut impl FnMut(usize)) -> usize {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    let mut at = 0;
    // SAFETY: the caller guarantees AVX2; both loads read 32 bytes inside
    // `bytes` (unaligned loads, allowed by `_mm256_loadu_si256`).
    unsafe {
        let newline = _mm256_set1_epi8(b'\n' as i8);
        while at + 64 <= bytes.len() {
            let low = _mm256_loadu_si256(bytes.as_ptr().add(at).cast::<__m256i>());
            let high = _mm256_loadu_si256(bytes.as_ptr().add(at + 32).cast::<__m256i>());
            // movemask gives one bit per byte; as u32 first, so no sign spreads.
            let mut mask = u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(low, newline)) as u32)
                | u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(high, newline)) as u32) << 32;
            while mask != 0 {
                f(at + mask.trailing_zeros() as usize);
                mask &= mask - 1;
            }
            at += 64;
        }
    }
    at
}

/// The JSON-plain prefix in whole blocks of 8 bytes, with bit tricks on a
/// `u64`: stops at the first block holding a byte that is not plain (the
/// caller finds it in the bytes that are left).
fn json_plain_prefix_swar(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Some byte of `v` is zero (the classic "has zero byte" test; exact
    // when it answers false, which is all that is relied on).
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS != 0;
    let mut start = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A byte >= 0x80, a byte < 0x20, a `"` or a `\`.
        let special = w & HIGHS != 0
            || w.wrapping_sub(ONES * 0x20) & !w & HIGHS != 0
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\')));
        if special {
            break;
        }
        start += 8;
    }
    start
}

/// The JSON-plain prefix in blocks of 16 bytes with SSE2: exact within the
/// block that holds the first byte that is not plain; else the whole blocks.
#[cfg(target_arch = "x86_64")]
fn json_plain_prefix_sse2(bytes: &[u8]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut start = 0;
    // SAFETY: SSE2 is part of the x86-64 baseline; every load reads 16 bytes
    // inside `bytes` (an unaligned load, allowed by `_mm_loadu_si128`).
    unsafe {
        let space = _mm_set1_epi8(0x20);
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        while start + 16 <= bytes.len() {
            let v = _mm_loadu_si128(bytes.as_ptr().add(start).cast::<__m128i>());
            // Signed compare: bytes >= 0x80 are negative, so below 0x20 too.
            let special = _mm_or_si128(
                _mm_cmplt_epi8(v, space),
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            );
            let mask = _mm_movemask_epi8(special);
            if mask != 0 {
                return start + mask.trailing_zeros() as usize;
            }
            start += 16;
        }
    }
    start
}

/// How far `bytes` holds only JSON-plain bytes and `\n`, in whole blocks of
/// 16 bytes with SSE2 (it may stop short of the first other byte).
#[cfg(target_arch = "x86_64")]
fn json_plain_text_sse2(bytes: &[u8]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let mut start = 0;
    // SAFETY: SSE2 is part of the x86-64 baseline; every load reads 16 bytes
    // inside `bytes` (an unaligned load, allowed by `_mm_loadu_si128`).
    unsafe {
        let space = _mm_set1_epi8(0x20);
        let newline = _mm_set1_epi8(b'\n' as i8);
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        while start + 16 <= bytes.len() {
            let v = _mm_loadu_si128(bytes.as_ptr().add(start).cast::<__m128i>());
            // Signed compare: bytes >= 0x80 are negative, so below 0x20 too.
            let control = _mm_andnot_si128(_mm_cmpeq_epi8(v, newline), _mm_cmplt_epi8(v, space));
            let special = _mm_or_si128(
                control,
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            );
            if _mm_movemask_epi8(special) != 0 {
                return start;
            }
            start += 16;
        }
    }
    start
}

/// [`json_plain_text_sse2`] in blocks of 32 bytes with AVX2.
///
/// # Safety
///
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn json_plain_text_avx2(bytes: &[u8]) -> usize {
    use std::arch::x86_64::{
        __m256i, _mm256_andnot_si256, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
    };
    let mut start = 0;
    // SAFETY: the caller guarantees AVX2; every load reads 32 bytes inside
    // `bytes` (an unaligned load, allowed by `_mm256_loadu_si256`).
    unsafe {
        let space = _mm256_set1_epi8(0x20);
        let newline = _mm256_set1_epi8(b'\n' as i8);
        let quote = _mm256_set1_epi8(b'"' as i8);
        let backslash = _mm256_set1_epi8(b'\\' as i8);
        while start + 32 <= bytes.len() {
            let v = _mm256_loadu_si256(bytes.as_ptr().add(start).cast::<__m256i>());
            // Signed compare: bytes >= 0x80 are negative, so below 0x20 too.
            let control =
                _mm256_andnot_si256(_mm256_cmpeq_epi8(v, newline), _mm256_cmpgt_epi8(space, v));
            let special = _mm256_or_si256(
                control,
                _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash)),
            );
            if _mm256_movemask_epi8(special) != 0 {
                return start;
            }
            start += 32;
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn newlines(scanner: Scanner, bytes: &[u8]) -> Vec<usize> {
        let mut found = Vec::new();
        scanner.for_each_newline(bytes, |i| found.push(i));
        found
    }

    #[test]
    fn byte_classes() {
        let json: Vec<u8> = (0..=255u8).filter(|&b| is_json_plain(b)).collect();
        let expected: Vec<u8> = (0x20..0x80u8)
            .filter(|&b| b != b'"' && b != b'\\')
            .collect();
        assert_eq!(json, expected);
        let text: Vec<u8> = (0..=255u8).filter(|&b| is_text_plain(b)).collect();
        let mut expected = vec![b'\t'];
        expected.extend(0x20..0x7fu8);
        assert_eq!(text, expected);
        for b in 0..=255u8 {
            assert_eq!(JSON_PLAIN[usize::from(b)], is_json_plain(b), "{b:#x}");
            assert_eq!(TEXT_PLAIN[usize::from(b)], is_text_plain(b), "{b:#x}");
        }
    }

    #[test]
    fn scalar_newlines() {
        assert_eq!(newlines(Scanner::SCALAR, b""), Vec::<usize>::new());
        assert_eq!(newlines(Scanner::SCALAR, b"abc"), Vec::<usize>::new());
        assert_eq!(newlines(Scanner::SCALAR, b"\na\r\n\n"), vec![0, 3, 4]);
    }

    #[test]
    fn scalar_json_plain_prefix() {
        let prefix = |b: &[u8]| Scanner::SCALAR.json_plain_prefix(b);
        assert_eq!(prefix(b""), 0);
        assert_eq!(prefix(b"plain text ~!"), 13);
        assert_eq!(prefix(b"ab\"c"), 2);
        assert_eq!(prefix(b"ab\\c"), 2);
        assert_eq!(prefix(b"ab\nc"), 2);
        assert_eq!(prefix(b"ab\x1fc"), 2);
        assert_eq!(prefix(b"ab\x7fc"), 4);
        assert_eq!(prefix("ab\u{e9}".as_bytes()), 2);
        assert_eq!(prefix(b"\xff"), 0);
    }

    #[test]
    fn scalar_json_plain_text() {
        let plain = |b: &[u8]| Scanner::SCALAR.is_json_plain_text(b);
        assert!(plain(b""));
        assert!(plain(b"one\ntwo\n\n"));
        assert!(!plain(b"one\r\ntwo"));
        assert!(!plain(b"tab\t"));
        assert!(!plain(b"\"quoted\""));
        assert!(!plain("caf\u{e9}".as_bytes()));
    }

    #[test]
    fn text_plain_prefix_stops_at_controls_del_and_non_ascii() {
        assert_eq!(text_plain_prefix(b"a\tb \"c\\"), 7);
        assert_eq!(text_plain_prefix(b"ab\rc"), 2);
        assert_eq!(text_plain_prefix(b"ab\x7f"), 2);
        assert_eq!(text_plain_prefix("ab\u{e9}".as_bytes()), 2);
    }

    #[test]
    fn all_scanners_start_with_the_reference_and_include_the_best() {
        let all = Scanner::all();
        assert_eq!(all[0], Scanner::SCALAR);
        assert!(all.contains(&Scanner::PORTABLE));
        assert!(all.contains(&Scanner::baseline()));
        assert!(all.contains(&Scanner::best()));
    }

    /// Every newline is found, in order, by every scanner, whatever the
    /// length and the density: across the 64-byte blocks (AVX2) and in the
    /// bytes after them, up to a whole pipe read.
    #[test]
    fn every_newline_is_found_in_order() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in (0..300).chain([4096, 65536]) {
            for density in [1, 3, 40, 1000] {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| match next() % density {
                        0 => b'\n',
                        r => [b'a', b'\r', 0x8a, 0x0b][r as usize % 4],
                    })
                    .collect();
                let expected: Vec<usize> = (0..len).filter(|&i| bytes[i] == b'\n').collect();
                for scanner in Scanner::all() {
                    assert_eq!(
                        newlines(scanner, &bytes),
                        expected,
                        "{scanner:?} len {len} density {density}"
                    );
                }
            }
        }
    }

    /// Bytes where about one in `density` is one the scans stop at (or, for
    /// newlines, report), the rest plain letters: long plain runs cross
    /// several SIMD blocks before a special byte, and every special byte
    /// lands at every position of a block.
    fn scanned_bytes() -> impl Strategy<Value = (Vec<u8>, usize)> {
        const SPECIAL: &[u8] = b"\n\r\"\\\x00\x1f\x20\x7f\x80\xe2\xff\t";
        (
            1u32..300,
            prop::collection::vec((any::<u32>(), any::<u8>()), 0..600),
            0usize..64,
        )
            .prop_map(|(density, picks, offset)| {
                let mut bytes = vec![b'x'; offset];
                bytes.extend(picks.into_iter().map(|(roll, byte)| match roll % density {
                    0 => SPECIAL[byte as usize % SPECIAL.len()],
                    1 if roll % 7 == 0 => byte,
                    _ => b'a' + byte % 26,
                }));
                (bytes, offset)
            })
    }

    proptest! {
        /// Every scanner of this CPU gives the scalar answer, at any length
        /// and alignment (the slice starts `offset` bytes into its buffer).
        #[test]
        fn every_scanner_agrees_with_the_scalar_one((buffer, offset) in scanned_bytes()) {
            let bytes = &buffer[offset..];
            let reference = Scanner::SCALAR;
            for scanner in Scanner::all() {
                prop_assert_eq!(
                    newlines(scanner, bytes),
                    newlines(reference, bytes),
                    "{:?}", scanner
                );
                prop_assert_eq!(
                    scanner.json_plain_prefix(bytes),
                    reference.json_plain_prefix(bytes),
                    "{:?}", scanner
                );
                prop_assert_eq!(
                    scanner.is_json_plain_text(bytes),
                    reference.is_json_plain_text(bytes),
                    "{:?}", scanner
                );
            }
        }

        /// The same on arbitrary bytes, and on plain text with arbitrary
        /// bytes at its end (where blocks and tails meet).
        #[test]
        fn every_scanner_agrees_on_any_bytes(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            plain in 0usize..200,
        ) {
            let mut tailed = vec![b'p'; plain];
            tailed.extend_from_slice(&bytes);
            for input in [&bytes, &tailed] {
                for scanner in Scanner::all() {
                    prop_assert_eq!(newlines(scanner, input), newlines(Scanner::SCALAR, input));
                    prop_assert_eq!(
                        scanner.json_plain_prefix(input),
                        Scanner::SCALAR.json_plain_prefix(input)
                    );
                    prop_assert_eq!(
                        scanner.is_json_plain_text(input),
                        Scanner::SCALAR.is_json_plain_text(input)
                    );
                }
            }
        }
    }
}
