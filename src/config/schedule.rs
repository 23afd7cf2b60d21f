//! `schedule`, `timezone` and `overlap`: what makes a daemon a job, checked
//! and turned into values the supervisor can compute due times from.
//!
//! Cron expressions are parsed by `croner` and evaluated in a `jiff` time
//! zone read from the system's zoneinfo. No database is bundled (it would add
//! hundreds of KiB to a binary that ships in every image), so a zone that
//! cannot be found is a configuration error that says why, never a silent UTC.

use std::time::Duration;

use croner::parser::{CronParser, Seconds};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The shortest `@every` interval: a job that runs more often is a daemon.
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// The longest `@every`: a year and a day. Longer intervals are typos (and
/// their due times would leave the range of the clocks); a yearly run is
/// `@yearly` or a cron expression.
pub const MAX_EVERY: Duration = Duration::from_secs(366 * 24 * 3600);

/// What happens when a run is due while the previous one still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// The due run is not started; it is logged and counted as skipped.
    #[default]
    Skip,
    /// One run waits for the running one to end; more are skipped.
    Queue,
    /// The running one gets its stop signal; the new run starts once it is gone.
    Replace,
}

impl Overlap {
    pub const CHOICES: &'static [(&'static str, Overlap)] = &[
        ("skip", Overlap::Skip),
        ("queue", Overlap::Queue),
        ("replace", Overlap::Replace),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Replace => "replace",
        }
    }
}

/// How the due times of a job follow each other.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// `@every 15m`: a fixed rate on the monotonic clock, first run one
    /// interval after the job is scheduled (robfig/cron and supercronic do the same).
    Every(Duration),
    /// A cron expression, evaluated on the wall clock in the job's zone.
    Cron(Box<Cron>),
}

/// A job's schedule as `daemons.json` gives it.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The `schedule` text as written, for the API and messages.
    pub schedule: String,
    pub cadence: Cadence,
    /// The `timezone` as written, `UTC` when not set.
    pub timezone: String,
    pub zone: TimeZone,
    pub overlap: Overlap,
}

/// Two specs are the same when they were written the same.
impl PartialEq for JobSpec {
    fn eq(&self, other: &Self) -> bool {
        self.schedule == other.schedule
            && self.timezone == other.timezone
            && self.overlap == other.overlap
    }
}

impl Eq for JobSpec {}

impl JobSpec {
    /// The first cron occurrence strictly after `after`, in the job's zone;
    /// `None` for an interval or when the expression has no further match.
    pub fn next_cron_after(&self, after: Timestamp) -> Option<Timestamp> {
        let Cadence::Cron(cron) = &self.cadence else {
            return None;
        };
        let zoned = after.to_zoned(self.zone.clone());
        cron.find_next_occurrence(&zoned, false)
            .ok()
            .map(|z| z.timestamp())
    }
}

/// Parses a `schedule`: `@every DURATION`, a nickname such as `@hourly`,
/// or five cron fields (minute hour day-of-month month day-of-week).
pub fn parse_schedule(text: &str) -> Result<Cadence, String> {
    let text = text.trim();
    if let Some(rest) = strip_prefix_ignore_case(text, "@every") {
        return parse_every(rest.trim());
    }
    if text.eq_ignore_ascii_case("@reboot") {
        return Err(
            "`@reboot` is not a schedule: a daemon without `schedule` runs at start".into(),
        );
    }
    let parser = CronParser::builder().seconds(Seconds::Disallowed).build();
    parser
        .parse(text)
        .map(|cron| Cadence::Cron(Box::new(cron)))
        .map_err(|e| {
            format!(
                "`{text}` is not a schedule ({e}); expected 5 cron fields \
                 (`minute hour day-of-month month day-of-week`, e.g. \"30 2 * * *\"), \
                 a name such as \"@hourly\", or an interval such as \"@every 15m\""
            )
        })
}

fn parse_every(duration: &str) -> Result<Cadence, String> {
    let interval = humantime::parse_duration(duration).map_err(|e| {
        format!("`@every {duration}`: not a duration ({e}); write e.g. \"@every 15m\" or \"@every 1h30m\"")
    })?;
    if interval < MIN_EVERY {
        return Err(format!(
            "`@every {duration}` is shorter than {} s: run a daemon instead",
            MIN_EVERY.as_secs()
        ));
    }
    if interval > MAX_EVERY {
        return Err(format!(
            "`@every {duration}` is longer than {} days: use a cron expression such as \"@yearly\"",
            MAX_EVERY.as_secs() / 86400
        ));
    }
    Ok(Cadence::Every(interval))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = &text[prefix.len()..];
    // `@everyday` is not `@every day`.
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest)
}

/// Finds a time zone by its IANA name in the system's database (`$TZDIR`,
/// else `/usr/share/zoneinfo`). `UTC` needs no database.
pub fn find_zone(name: &str) -> Result<TimeZone, String> {
    if name.eq_ignore_ascii_case("UTC") || name == "Etc/UTC" {
        return Ok(TimeZone::UTC);
    }
    match TimeZone::get(name) {
        Ok(zone) => Ok(zone),
        Err(_) if jiff::tz::db().is_definitively_empty() => Err(format!(
            "time zone `{name}`: no time zone database on this system ($TZDIR or \
             /usr/share/zoneinfo; a scratch image has none): copy /usr/share/zoneinfo \
             into the image (or install tzdata), or write the schedule in UTC"
        )),
        Err(e) => Err(format!(
            "unknown time zone `{name}` ({e}); expected an IANA name such as \"Europe/Paris\""
        )),
    }
}

#[cfg(test)]
impl JobSpec {
    /// A job of `schedule` in `zone` with the default overlap, for tests.
    pub(crate) fn for_test(schedule: &str, zone: &str) -> JobSpec {
        JobSpec {
            schedule: schedule.into(),
            cadence: parse_schedule(schedule).expect("schedule"),
            timezone: zone.into(),
            zone: find_zone(zone).expect("zone"),
            overlap: Overlap::Skip,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn job(schedule: &str, zone: &str) -> JobSpec {
        JobSpec::for_test(schedule, zone)
    }

    #[test]
    fn every_takes_humantime_durations() {
        let cases = [
            ("@every 15m", 900),
            ("@every 1h30m", 5400),
            ("@EVERY 2s", 2),
            ("  @every   1h  ", 3600),
        ];
        for (text, secs) in cases {
            match parse_schedule(text) {
                Ok(Cadence::Every(d)) => assert_eq!(d, Duration::from_secs(secs), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        for (text, needle) in [
            ("@every", "not a duration"),
            ("@every 500ms", "shorter than 1 s"),
            ("@every 367d", "longer than 366 days"),
            ("@every 99999999999h", "longer than 366 days"),
            ("@every soon", "not a duration"),
            ("@reboot", "@reboot"),
            ("* * * *", "5 cron fields"),
            ("0 * * * * *", "5 cron fields"),
            ("61 * * * *", "5 cron fields"),
            ("@everyday", "5 cron fields"),
        ] {
            let err = parse_schedule(text)
                .err()
                .unwrap_or_else(|| panic!("{text} parsed"));
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn five_fields_and_nicknames_in_utc() {
        let hourly = job("@hourly", "UTC");
        assert_eq!(
            hourly.next_cron_after(ts("2026-12-03T16:29:38Z")),
            Some(ts("2026-12-03T17:00:00Z"))
        );
        let nightly = job("30 2 * * *", "UTC");
        assert_eq!(
            nightly.next_cron_after(ts("2026-12-03T02:30:00Z")),
            Some(ts("2026-12-04T02:30:00Z")),
            "strictly after: a run at its due time does not find itself again"
        );
        let weekdays = job("0 9 * * MON-FRI", "UTC");
        assert_eq!(
            weekdays.next_cron_after(ts("2026-12-04T10:00:00Z")), // a Friday
            Some(ts("2026-12-07T09:00:00Z"))
        );
        assert_eq!(
            job("@every 1m", "UTC").next_cron_after(ts("2026-12-04T10:00:00Z")),
            None
        );
    }

    #[test]
    fn a_zone_shifts_the_wall_time() {
        let paris = job("0 9 * * *", "Europe/Paris");
        // Winter: UTC+1.
        assert_eq!(
            paris.next_cron_after(ts("2026-12-03T12:00:00Z")),
            Some(ts("2026-12-04T08:00:00Z"))
        );
        // Summer: UTC+2.
        assert_eq!(
            paris.next_cron_after(ts("2026-07-03T12:00:00Z")),
            Some(ts("2026-07-04T07:00:00Z"))
        );
    }

    #[test]
    fn dst_gap_runs_once_and_dst_overlap_runs_once() {
        // 2026-03-29 in Paris: 02:00 → 03:00, 02:30 does not exist that day.
        let gap = job("30 2 * * *", "Europe/Paris");
        let first = gap.next_cron_after(ts("2026-03-28T12:00:00Z"));
        // The run moves to the first instant after the gap (03:00 CEST = 01:00 UTC).
        assert_eq!(first, Some(ts("2026-03-29T01:00:00Z")));
        let second = first.and_then(|t| gap.next_cron_after(t));
        assert_eq!(second, Some(ts("2026-03-30T00:30:00Z")), "once a day only");
        // 2026-10-25 in Paris: 03:00 → 02:00, 02:30 happens twice; the job runs once.
        let fold = job("30 2 * * *", "Europe/Paris");
        let first = fold.next_cron_after(ts("2026-10-24T12:00:00Z"));
        assert_eq!(first, Some(ts("2026-10-25T00:30:00Z")));
        let second = first.and_then(|t| fold.next_cron_after(t));
        assert_eq!(
            second,
            Some(ts("2026-10-26T01:30:00Z")),
            "not again an hour later"
        );
    }

    #[test]
    fn zones_are_found_or_explained() {
        assert!(find_zone("UTC").is_ok());
        assert!(find_zone("Europe/Paris").is_ok());
        let err = find_zone("Mars/Olympus").err().unwrap_or_default();
        assert!(err.contains("unknown time zone `Mars/Olympus`"), "{err}");
    }

    #[test]
    fn overlap_names_round_trip() {
        for &(name, overlap) in Overlap::CHOICES {
            assert_eq!(overlap.as_str(), name);
        }
    }
}
