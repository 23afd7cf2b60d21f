//! Signal names and numbers, as written in `stop_signal`, the CLI and the API.
//!
//! Names are matched case-insensitively, with or without the `SIG` prefix, because
//! people write `TERM`, `SIGTERM` and `term` interchangeably (as `kill -s` accepts).

/// The standard Linux signals with their names (without `SIG`), in number order,
/// followed by the aliases that `kill -l` and glibc also accept.
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
    // Aliases: only used for parsing; `signal_name` finds the canonical name first.
    ("IOT", libc::SIGABRT),
    ("CLD", libc::SIGCHLD),
    ("POLL", libc::SIGIO),
];

/// The highest signal number accepted as a plain number (Linux has 64 signals).
const MAX_SIGNAL: i32 = 64;

/// Parses a signal given as a name (`TERM`, `SIGTERM`, `term`), a real-time name
/// (`RTMIN`, `RTMIN+3`, `SIGRTMAX-1`) or a number (`15`, 1 to 64).
///
/// Returns `None` for anything else, including 0 (which `kill` treats as a probe,
/// not a signal).
pub fn parse_signal(text: &str) -> Option<i32> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=MAX_SIGNAL).contains(n));
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, number)| number)
        .or_else(|| parse_realtime(name))
}

/// Real-time signals are numbered relative to the C library's `SIGRTMIN`/`SIGRTMAX`
/// (glibc keeps the first two for itself), so they are resolved at run time.
fn parse_realtime(name: &str) -> Option<i32> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let number = if let Some(rest) = name.strip_prefix("RTMIN") {
        min + parse_offset(rest, '+')?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        max - parse_offset(rest, '-')?
    } else {
        return None;
    };
    (min..=max).contains(&number).then_some(number)
}

/// Parses the `+N` (or `-N`) after `RTMIN` (or `RTMAX`); nothing means 0.
fn parse_offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    let digits = rest.strip_prefix(sign)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The conventional name of a signal (`SIGTERM`), or its number as text when it has
/// no standard name (real-time signals, out-of-range numbers).
pub fn signal_name(sig: i32) -> String {
    NAMES
        .iter()
        .find(|&&(_, number)| number == sig)
        .map(|(name, _)| format!("SIG{name}"))
        .unwrap_or_else(|| sig.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_prefix_in_any_case() {
        assert_eq!(parse_signal("TERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("term"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("SigHup"), Some(libc::SIGHUP));
        assert_eq!(parse_signal("WINCH"), Some(28));
        assert_eq!(parse_signal("PWR"), Some(30));
        assert_eq!(parse_signal("STKFLT"), Some(16));
    }

    #[test]
    fn every_standard_name_round_trips() {
        for number in 1..=31 {
            let name = signal_name(number);
            assert!(name.starts_with("SIG"), "{number} has no name: {name}");
            assert_eq!(parse_signal(&name), Some(number), "{name}");
        }
    }

    #[test]
    fn aliases_resolve_to_the_canonical_signal() {
        assert_eq!(parse_signal("IOT"), Some(libc::SIGABRT));
        assert_eq!(parse_signal("SIGCLD"), Some(libc::SIGCHLD));
        assert_eq!(parse_signal("POLL"), Some(libc::SIGIO));
        assert_eq!(signal_name(libc::SIGABRT), "SIGABRT");
        assert_eq!(signal_name(libc::SIGCHLD), "SIGCHLD");
    }

    #[test]
    fn numbers_from_1_to_64() {
        assert_eq!(parse_signal("15"), Some(15));
        assert_eq!(parse_signal("1"), Some(1));
        assert_eq!(parse_signal("64"), Some(64));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("65"), None);
        assert_eq!(parse_signal("-9"), None);
        assert_eq!(parse_signal("+9"), None);
        assert_eq!(parse_signal("99999999999"), None);
    }

    #[test]
    fn realtime_names() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(parse_signal("RTMIN"), Some(min));
        assert_eq!(parse_signal("SIGRTMIN+2"), Some(min + 2));
        assert_eq!(parse_signal("rtmax-1"), Some(max - 1));
        assert_eq!(parse_signal("RTMAX"), Some(max));
        assert_eq!(parse_signal("RTMIN+100"), None);
        assert_eq!(parse_signal("RTMIN-1"), None);
        assert_eq!(parse_signal("RTMIN+"), None);
        assert_eq!(signal_name(min + 1), (min + 1).to_string());
    }

    #[test]
    fn garbage_is_rejected() {
        for text in ["", "SIG", "TERMINATE", "SIGSIGTERM", " TERM", "15 ", "1.5"] {
            assert_eq!(parse_signal(text), None, "{text:?}");
        }
    }

    #[test]
    fn unknown_numbers_are_named_by_number() {
        assert_eq!(signal_name(0), "0");
        assert_eq!(signal_name(200), "200");
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
    }
}
