//! The sd_notify protocol as plain data: one datagram of newline-separated
//! `KEY=VALUE` lines turned into a [`Notice`]. Unknown keys are ignored (the
//! protocol grows; `FDSTORE=1` and friends mean nothing to pidzero), and so
//! are values that do not parse.

/// The longest `STATUS=` text kept, in bytes (cut at a character boundary):
/// it is shown in `status` and the API, not stored as a log.
pub const MAX_STATUS_BYTES: usize = 256;

/// What one datagram (or one notification-fd newline) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notice {
    /// `READY=1`.
    pub ready: bool,
    /// `RELOADING=1`: not ready until the next `READY=1`.
    pub reloading: bool,
    /// `STOPPING=1`.
    pub stopping: bool,
    /// `STATUS=…`, cut to [`MAX_STATUS_BYTES`].
    pub status: Option<String>,
    /// `WATCHDOG=1` (a keep-alive) or `WATCHDOG=trigger` (a miss, on purpose).
    pub watchdog: Option<Keepalive>,
    /// `WATCHDOG_USEC=`: a new keep-alive period (0 turns the watchdog off).
    pub watchdog_usec: Option<u64>,
    /// `EXTEND_TIMEOUT_USEC=`: the running timeout ends no sooner than this from now.
    pub extend_timeout_usec: Option<u64>,
    /// `MAINPID=`: read, and ignored (see the runtime's notify module).
    pub main_pid: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    Ping,
    Trigger,
}

impl Notice {
    /// A notification-fd newline: the one thing that protocol can say.
    pub fn ready() -> Self {
        Notice {
            ready: true,
            ..Notice::default()
        }
    }

    /// Parses one datagram. Invalid UTF-8 is replaced (only `STATUS` can show it).
    pub fn parse(datagram: &[u8]) -> Self {
        let mut notice = Notice::default();
        for line in datagram.split(|&b| b == b'\n') {
            let Some(eq) = line.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (key, value) = (&line[..eq], &line[eq + 1..]);
            match key {
                b"READY" => notice.ready |= value == b"1",
                b"RELOADING" => notice.reloading |= value == b"1",
                b"STOPPING" => notice.stopping |= value == b"1",
                b"STATUS" => notice.status = Some(status_text(value)),
                b"WATCHDOG" => match value {
                    b"1" => notice.watchdog = Some(Keepalive::Ping),
                    b"trigger" => notice.watchdog = Some(Keepalive::Trigger),
                    _ => {}
                },
                b"WATCHDOG_USEC" => notice.watchdog_usec = number(value),
                b"EXTEND_TIMEOUT_USEC" => notice.extend_timeout_usec = number(value),
                b"MAINPID" => notice.main_pid = number(value).and_then(|n| i32::try_from(n).ok()),
                _ => {}
            }
        }
        notice
    }
}

fn number(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// The status text, lossy UTF-8, cut to [`MAX_STATUS_BYTES`] on a character boundary.
fn status_text(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    if text.len() <= MAX_STATUS_BYTES {
        return text.into_owned();
    }
    let mut end = MAX_STATUS_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_key_is_read_and_unknown_ones_ignored() {
        let n = Notice::parse(
            b"READY=1\nSTATUS=serving 3 clients\nFDSTORE=1\nWATCHDOG=1\nWATCHDOG_USEC=500000\n\
              EXTEND_TIMEOUT_USEC=2000000\nMAINPID=42\njunk\n",
        );
        assert_eq!(
            n,
            Notice {
                ready: true,
                reloading: false,
                stopping: false,
                status: Some("serving 3 clients".into()),
                watchdog: Some(Keepalive::Ping),
                watchdog_usec: Some(500_000),
                extend_timeout_usec: Some(2_000_000),
                main_pid: Some(42),
            }
        );
    }

    #[test]
    fn reloading_stopping_and_trigger() {
        let n = Notice::parse(b"RELOADING=1\nSTOPPING=1\nWATCHDOG=trigger");
        assert!(n.reloading && n.stopping && !n.ready);
        assert_eq!(n.watchdog, Some(Keepalive::Trigger));
        assert_eq!(Notice::parse(b"READY=0"), Notice::default());
        assert_eq!(Notice::parse(b"WATCHDOG_USEC=soon").watchdog_usec, None);
    }

    #[test]
    fn status_text_is_bounded_on_a_character_boundary() {
        let long = format!("STATUS={}", "é".repeat(300));
        let status = Notice::parse(long.as_bytes()).status.unwrap_or_default();
        assert!(status.len() <= MAX_STATUS_BYTES && status.len() >= MAX_STATUS_BYTES - 1);
        assert!(status.chars().all(|c| c == 'é'));
        let bad = Notice::parse(b"STATUS=a\xffb").status;
        assert_eq!(bad.as_deref(), Some("a\u{fffd}b"));
    }
}
