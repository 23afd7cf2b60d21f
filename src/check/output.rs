//! What `check` prints: lines for people, or one JSON array for tools.

use super::problem::{Problem, Severity};
use super::Report;

/// The text for each stream.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub stdout: String,
    pub stderr: String,
}

/// On stdout: the summary line when there is no error, then warnings and
/// notes. On stderr: each error (`pidzero: ` first, as configuration errors
/// of a run are shown) and their count. So stderr holds exactly what makes
/// the exit status 2, each line with its file and position where it has one.
pub fn human(report: &Report) -> Rendered {
    let mut out = Rendered::default();
    let errors = report.errors();
    if errors == 0 {
        out.stdout = format!(
            "{}: {} daemon(s) OK",
            report.daemons_file.display(),
            report.daemons_ok
        );
        if report.config_found {
            out.stdout += &format!("; {}: OK", report.config_file.display());
        }
        out.stdout.push('\n');
    }
    for problem in &report.problems {
        match problem.severity {
            Severity::Error => out.stderr += &format!("pidzero: {problem}\n"),
            Severity::Warning => out.stdout += &format!("warning: {problem}\n"),
            Severity::Note => out.stdout += &format!("note: {problem}\n"),
        }
    }
    if errors > 0 {
        out.stderr += &format!("pidzero: {errors} problem(s) found\n");
    }
    out
}

/// One JSON array of every finding, one object per line (so `grep` works
/// too), `[]` when there is none: always one document for `jq`.
pub fn json(problems: &[Problem]) -> Result<String, serde_json::Error> {
    if problems.is_empty() {
        return Ok("[]\n".to_owned());
    }
    let lines = problems
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("[\n{}\n]\n", lines.join(",\n")))
}
