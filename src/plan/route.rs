//! `sinks` against `config.json`: a daemon may only be routed to handlers
//! that are configured and on, so that a typo or a handler left off is a
//! configuration error (exit 2, with file, line:column, daemon and field)
//! instead of lines that silently go nowhere.

use crate::config::{LineRoute, LogSettings, SinkKind, SinkSet};

/// The handlers `config.json` turns on; pidzero's own events go to all of
/// them, and daemons without `sinks` too.
pub fn configured_sinks(log: &LogSettings) -> SinkSet {
    let mut set = SinkSet::NONE;
    if log.log_to_stdout {
        set = set.with(SinkKind::Stdout);
    }
    if log.log_to_file {
        set = set.with(SinkKind::File);
    }
    for kind in log.net.kinds().kinds() {
        set = set.with(kind);
    }
    set
}

/// The sinks a daemon's lines go to: all when it names none, else the ones
/// it names, each of which must be configured; the error names the first
/// one that is not, and how to turn it on.
pub fn daemon_sinks(named: Option<SinkSet>, log: &LogSettings) -> Result<SinkSet, String> {
    let Some(named) = named else {
        return Ok(SinkSet::ALL);
    };
    let configured = configured_sinks(log);
    match named.kinds().find(|kind| !configured.contains(*kind)) {
        None => Ok(named),
        Some(kind) => Err(not_configured(kind)),
    }
}

fn not_configured(kind: SinkKind) -> String {
    let name = kind.name();
    match kind {
        SinkKind::Stdout => format!(
            "sink `{name}` is off in config.json (`log.log_to_stdout` is false); turn it on or remove `{name}` from `sinks`"
        ),
        SinkKind::File => format!(
            "sink `{name}` is off in config.json (`log.log_to_file` is false); turn it on or remove `{name}` from `sinks`"
        ),
        _ => format!(
            "sink `{name}` is not configured: config.json has no `log.{name}` handler; configure it or remove `{name}` from `sinks`"
        ),
    }
}

/// The route of a daemon's lines, `sinks` checked.
pub fn line_route(
    spec: &crate::config::DaemonSpec,
    log: &LogSettings,
) -> Result<LineRoute, String> {
    Ok(LineRoute {
        sinks: daemon_sinks(spec.sinks, log)?,
        parse: spec.parse,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(stdout: bool, file: bool) -> LogSettings {
        LogSettings {
            log_to_stdout: stdout,
            log_to_file: file,
            ..crate::config::Settings::default().log
        }
    }

    #[test]
    fn network_handlers_count_once_configured() {
        let mut with_forward = log(true, false);
        assert!(daemon_sinks(Some(SinkSet::of([SinkKind::Forward])), &with_forward).is_err());
        with_forward.net.forward = Some(crate::config::ForwardSettings {
            address: crate::config::NetAddress::Tcp {
                host: "127.0.0.1".into(),
                port: 9000,
            },
            format: crate::config::LogFormat::Json,
            buffer_records: 10,
            buffer_bytes: 65536,
        });
        let named = SinkSet::of([SinkKind::Forward]);
        assert_eq!(daemon_sinks(Some(named), &with_forward), Ok(named));
        let syslog = SinkSet::of([SinkKind::Syslog]);
        let err = daemon_sinks(Some(syslog), &with_forward).unwrap_err();
        assert!(err.contains("no `log.syslog` handler"), "{err}");
    }

    #[test]
    fn absent_means_all_and_named_sinks_must_be_on() {
        let both = log(true, true);
        assert_eq!(daemon_sinks(None, &log(true, false)), Ok(SinkSet::ALL));
        let file = SinkSet::of([SinkKind::File]);
        assert_eq!(daemon_sinks(Some(file), &both), Ok(file));
        assert_eq!(daemon_sinks(Some(SinkSet::NONE), &both), Ok(SinkSet::NONE));
        let err = daemon_sinks(Some(file), &log(true, false)).unwrap_err();
        assert!(
            err.contains("`file`") && err.contains("log_to_file"),
            "{err}"
        );
        let err =
            daemon_sinks(Some(SinkSet::of([SinkKind::Stdout])), &log(false, true)).unwrap_err();
        assert!(err.contains("log_to_stdout"), "{err}");
        for kind in [
            SinkKind::Syslog,
            SinkKind::Forward,
            SinkKind::Loki,
            SinkKind::Otlp,
        ] {
            let err = daemon_sinks(Some(SinkSet::of([SinkKind::Stdout, kind])), &both).unwrap_err();
            assert!(err.contains(&format!("`log.{}`", kind.name())), "{err}");
        }
    }
}
