//! What the HTTP handlers share between their payload encoders: the
//! records of a batch as taken from the queue, their times in Unix
//! nanoseconds. Pure: no I/O.

use super::encode::{Item, Rec};
use crate::config::MessageFormat;
use crate::log::format::{format_event, format_spans};
use crate::log::record::Timestamp;

/// The records taken from the queue for one request: each item with the
/// number of its records that belong to the batch (see `Queue::take`).
pub type Taken = [(Item, usize)];

/// Calls `f` on every record of `items`, in order.
pub fn for_each_record<'a>(items: &'a Taken, mut f: impl FnMut(Rec<'a>)) {
    for (item, max) in items {
        item.for_each_record(*max, &mut f);
    }
}

/// The record's text for a handler whose `format` is `format`: the line
/// alone (an event's `line`), or the whole record in a format, without its
/// newline. Bytes, possibly not UTF-8 (the JSON writer makes them lossy).
pub fn record_text<'a>(rec: Rec<'a>, format: MessageFormat, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    scratch.clear();
    match (rec, format) {
        (Rec::Line { batch, span }, MessageFormat::Line) => batch.line(span),
        (Rec::Event(event), MessageFormat::Line) => event.line.as_bytes(),
        (Rec::Line { batch, span }, MessageFormat::Record(format)) => {
            format_spans(scratch, format, batch, std::slice::from_ref(&span), None);
            strip_newline(scratch)
        }
        (Rec::Event(event), MessageFormat::Record(format)) => {
            format_event(scratch, format, event);
            strip_newline(scratch)
        }
    }
}

fn strip_newline(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\n").unwrap_or(text)
}

/// A record's timestamp (RFC 3339 UTC, milliseconds, as pidzero writes
/// them) in nanoseconds since the Unix epoch.
pub fn unix_nanos(ts: &Timestamp) -> u64 {
    let number = |from: usize, to: usize| {
        ts[from..to]
            .iter()
            .fold(0u64, |n, b| n * 10 + u64::from(b.wrapping_sub(b'0').min(9)))
    };
    let days = days_from_civil(number(0, 4), number(5, 7), number(8, 10));
    let seconds = days * 86_400 + number(11, 13) * 3600 + number(14, 16) * 60 + number(17, 19);
    // Past the year 2554 a u64 of nanoseconds overflows: saturate.
    seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(number(20, 23) * 1_000_000)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`, the inverse of the record
/// module's `civil_from_days`), for dates from 1970 on.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 {
        year.saturating_sub(1)
    } else {
        year
    };
    let era = year / 400;
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day.saturating_sub(1);
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::format_timestamp;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        assert_eq!(unix_nanos(b"1970-01-01T00:00:00.000Z"), 0);
        assert_eq!(
            unix_nanos(b"2026-03-05T14:09:00.123Z"),
            1_772_719_740_123_000_000
        );
        assert_eq!(
            unix_nanos(b"2000-02-29T23:59:59.999Z"),
            951_868_799_999_000_000
        );
    }

    proptest! {
        #[test]
        fn inverse_of_the_record_timestamp(secs in 0u64..18_000_000_000, millis in 0u32..1000) {
            let ts = format_timestamp(secs, millis);
            prop_assert_eq!(unix_nanos(&ts), secs * 1_000_000_000 + u64::from(millis) * 1_000_000);
        }
    }
}
