//! One finding of `pidzero check`, shown to people as one line and to tools
//! as one JSON object.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::config::{ConfigError, OneLine, Position};

/// How much a finding matters: only errors make `check` exit 2, because only
/// they make a run refuse to start (or fail a daemon at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A run refuses to start, or a daemon cannot run.
    Error,
    /// A run starts but something will not work (the default control socket).
    Warning,
    /// Worth knowing (a missing `config.json`, a raised `restart_delay`).
    Note,
}

/// One finding. The JSON object has these keys in this order, `null` where
/// a key does not apply (no file, no position, no daemon, no field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A file's path; or the option or variable the value came from
    /// (`--socket`, `PIDZERO_LOG_FORMAT`); `null` for built-in defaults.
    pub file: Option<String>,
    /// 1-based, in characters.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub daemon: Option<String>,
    pub field: Option<String>,
    pub message: String,
    pub severity: Severity,
}

impl Problem {
    /// A finding about `file` as a whole, or at `position` in it when known.
    pub fn in_file(file: &Path, position: Option<Position>, field: Option<&str>) -> Problem {
        let position = position.filter(|p| p.line > 0);
        Problem {
            file: Some(file.display().to_string()),
            line: position.map(|p| p.line),
            column: position.map(|p| p.column),
            daemon: None,
            field: field.map(str::to_owned),
            message: String::new(),
            severity: Severity::Error,
        }
    }

    /// A finding about no file (built-in defaults).
    pub fn detached(field: Option<&str>) -> Problem {
        Problem {
            file: None,
            line: None,
            column: None,
            daemon: None,
            field: field.map(str::to_owned),
            message: String::new(),
            severity: Severity::Error,
        }
    }

    pub fn with(mut self, severity: Severity, message: impl Into<String>) -> Problem {
        self.severity = severity;
        self.message = message.into();
        self
    }
}

impl From<ConfigError> for Problem {
    fn from(error: ConfigError) -> Problem {
        let position = (error.line > 0).then_some((error.line, error.column));
        Problem {
            file: Some(error.file.display().to_string()),
            line: position.map(|(line, _)| line),
            column: position.map(|(_, column)| column),
            daemon: error.daemon,
            field: error.field,
            message: error.message,
            severity: Severity::Error,
        }
    }
}

/// `FILE:LINE:COLUMN: daemon D: field F: MESSAGE`, as configuration errors
/// are shown, leaving out the parts that do not apply.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(file) = &self.file {
            write!(f, "{}", OneLine(file))?;
            if let (Some(line), Some(column)) = (self.line, self.column) {
                write!(f, ":{line}:{column}")?;
            }
            f.write_str(":")?;
            sep = " ";
        }
        if let Some(daemon) = &self.daemon {
            write!(f, "{sep}daemon {}:", OneLine(daemon))?;
            sep = " ";
        }
        if let Some(field) = &self.field {
            write!(f, "{sep}field {}:", OneLine(field))?;
            sep = " ";
        }
        write!(f, "{sep}{}", OneLine(&self.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config_error(line: usize) -> ConfigError {
        ConfigError {
            file: PathBuf::from("/c/daemons.json"),
            line,
            column: 5,
            daemon: Some("web".into()),
            field: Some("command".into()),
            message: "bad\nthing".into(),
        }
    }

    #[test]
    fn shown_like_a_config_error() {
        let error = config_error(3);
        let shown = error.to_string();
        assert_eq!(Problem::from(error).to_string(), shown);
        let error = config_error(0);
        let shown = error.to_string();
        assert_eq!(Problem::from(error).to_string(), shown);
    }

    #[test]
    fn parts_that_do_not_apply_are_left_out() {
        let p = Problem::detached(None).with(Severity::Warning, "m");
        assert_eq!(p.to_string(), "m");
        let p = Problem::detached(Some("--socket")).with(Severity::Error, "m");
        assert_eq!(p.to_string(), "field --socket: m");
        let at = Position { line: 2, column: 9 };
        let p = Problem::in_file(Path::new("c.json"), Some(at), Some("api.socket"));
        assert_eq!(
            p.with(Severity::Error, "m").to_string(),
            "c.json:2:9: field api.socket: m"
        );
    }

    #[test]
    fn json_keys_in_order_with_nulls() {
        let p = Problem::from(config_error(0)).with(Severity::Note, "x");
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"file":"/c/daemons.json","line":null,"column":null,"daemon":"web","field":"command","message":"x","severity":"note"}"#
        );
    }
}
