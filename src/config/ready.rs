//! `ready`, `ready_timeout` and `watchdog`: how a daemon tells pidzero it is
//! ready, how long it may take, and how often it must say it is still alive.

use std::time::Duration;

use serde_json::value::RawValue;

use super::json::{self, Fields, Kind, Report};

/// The keys of the object form of `ready` (`{"notify": "fd", "fd": 3}`).
pub(super) const READY_FIELDS: &[&str] = &["notify", "fd"];

/// The notification descriptor when `fd` is not given: s6's usual choice.
pub const DEFAULT_NOTIFY_FD: i32 = 3;

/// The highest notification descriptor accepted: daemons expect a small
/// number, and a low one cannot collide with descriptors the spawn itself uses.
pub const MAX_NOTIFY_FD: i64 = 255;

/// The shortest `watchdog`: a keep-alive more often than ten times a second
/// would make PID 1 busy for nothing.
const MIN_WATCHDOG: Duration = Duration::from_millis(100);

/// When a daemon counts as ready (for `depends_on`, `/health` and `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyMode {
    /// As soon as it is spawned.
    Started,
    /// Once its health check first passes (and while it passes).
    Health,
    /// When it sends `READY=1` to its `NOTIFY_SOCKET` (sd_notify).
    Systemd,
    /// When it writes a newline to this descriptor (s6's notification-fd).
    Fd(i32),
}

impl ReadyMode {
    /// The name the API and `check` use for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyMode::Started => "started",
            ReadyMode::Health => "health",
            ReadyMode::Systemd => "notify:systemd",
            ReadyMode::Fd(_) => "notify:fd",
        }
    }

    /// The readiness of a daemon without `ready`: ready once spawned, or once
    /// healthy when it has a health check (what `depends_on` always waited for).
    pub fn default_for(has_health: bool) -> Self {
        if has_health {
            ReadyMode::Health
        } else {
            ReadyMode::Started
        }
    }
}

/// The three fields as read (each `None` when absent or wrong).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ReadyFields {
    pub ready: Option<ReadyMode>,
    pub ready_timeout: Option<Duration>,
    pub watchdog: Option<Duration>,
}

/// Reads `ready`, `ready_timeout` and `watchdog` and checks them against each
/// other and against `health` (given or not).
pub(super) fn read(report: &mut Report, fields: &Fields, has_health: bool) -> ReadyFields {
    let ready = fields
        .get("ready")
        .and_then(|raw| read_ready(report, raw, has_health));
    let ready_timeout = fields
        .get("ready_timeout")
        .and_then(|raw| positive_seconds(report, raw, "ready_timeout", Duration::ZERO));
    let watchdog = fields
        .get("watchdog")
        .and_then(|raw| positive_seconds(report, raw, "watchdog", MIN_WATCHDOG));
    // A `ready` that had a problem of its own was reported already: the
    // checks against it would only repeat that.
    let ready_usable = ready.is_some() || fields.get("ready").is_none();
    let effective = ready.unwrap_or(ReadyMode::default_for(has_health));
    if let (Some(raw), Some(_), true) = (fields.get("ready_timeout"), ready_timeout, ready_usable) {
        if effective == ReadyMode::Started {
            let why = "a daemon that is ready once started cannot miss a ready timeout; \
                       set `ready` to \"health\" or a notify form";
            report.at(raw, "ready_timeout", why);
        }
    }
    if let (Some(raw), Some(_), true) = (fields.get("watchdog"), watchdog, ready_usable) {
        if effective != ReadyMode::Systemd {
            let why = "needs `\"ready\": {\"notify\": \"systemd\"}`: keep-alives are sd_notify \
                       `WATCHDOG=1` messages";
            report.at(raw, "watchdog", why);
        }
    }
    ReadyFields {
        ready,
        ready_timeout,
        watchdog,
    }
}

fn read_ready(report: &mut Report, raw: &RawValue, has_health: bool) -> Option<ReadyMode> {
    let mode = match Kind::of(raw) {
        Kind::String => {
            let text = json::string(report, raw, "ready")?;
            match text.as_str() {
                "started" => ReadyMode::Started,
                "health" => ReadyMode::Health,
                other => {
                    let why = format!(
                        "expected \"started\", \"health\", {{\"notify\": \"systemd\"}} or \
                         {{\"notify\": \"fd\", \"fd\": 3}}, found \"{other}\""
                    );
                    report.at(raw, "ready", why);
                    return None;
                }
            }
        }
        Kind::Object => read_notify(report, raw)?,
        other => {
            let why = format!(
                "expected \"started\", \"health\" or an object such as {{\"notify\": \"systemd\"}}, found {other}"
            );
            report.at(raw, "ready", why);
            return None;
        }
    };
    if mode == ReadyMode::Health && !has_health {
        report.at(raw, "ready", "\"health\" needs a `health` check to pass");
        return None;
    }
    Some(mode)
}

/// `{"notify": "systemd"}` or `{"notify": "fd", "fd": N}`.
fn read_notify(report: &mut Report, raw: &RawValue) -> Option<ReadyMode> {
    let errors_before = report.count();
    let fields = json::object(report, raw, "ready", READY_FIELDS, "ready.")?;
    let Some(kind_raw) = fields.get("notify") else {
        if report.count() == errors_before {
            report.at(raw, "ready.notify", "missing: \"systemd\" or \"fd\"");
        }
        return None;
    };
    let kind = json::string(report, kind_raw, "ready.notify")?;
    match kind.as_str() {
        "systemd" => {
            if let Some(fd_raw) = fields.get("fd") {
                report.at(fd_raw, "ready.fd", "applies only to \"notify\": \"fd\"");
                return None;
            }
            (report.count() == errors_before).then_some(ReadyMode::Systemd)
        }
        "fd" => {
            let fd = match fields.get("fd") {
                None => DEFAULT_NOTIFY_FD,
                Some(fd_raw) => {
                    let n = json::integer(report, fd_raw, "ready.fd", MAX_NOTIFY_FD as u64)?;
                    if n < 3 {
                        let why = format!(
                            "must be 3 or more (0, 1 and 2 are stdin, stdout and stderr), found {n}"
                        );
                        report.at(fd_raw, "ready.fd", why);
                        return None;
                    }
                    n as i32
                }
            };
            (report.count() == errors_before).then_some(ReadyMode::Fd(fd))
        }
        other => {
            let why = format!("expected \"systemd\" or \"fd\", found \"{other}\"");
            report.at(kind_raw, "ready.notify", why);
            None
        }
    }
}

/// A number of seconds greater than 0 and at least `min`.
fn positive_seconds(
    report: &mut Report,
    raw: &RawValue,
    field: &str,
    min: Duration,
) -> Option<Duration> {
    let value = json::seconds(report, raw, field)?;
    if value.is_zero() {
        report.at(raw, field, "must be greater than 0");
        return None;
    }
    if value < min {
        let why = format!(
            "must be at least {} s, found {} s",
            min.as_secs_f64(),
            value.as_secs_f64()
        );
        report.at(raw, field, why);
        return None;
    }
    Some(value)
}
