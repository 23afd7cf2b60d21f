//! What `check` prints: lines for people, or one JSON array for tools.

use super::problem::Severity;
use super::Report;

/// The text for each stream.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub stdout: String,
    pub stderr: String,
}

fn prefix(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "",
        Severity::Warning => "warning: ",
        Severity::Note => "note: ",
    }
}

/// Without errors: the summary line, then warnings and notes, on stdout.
/// With errors: every finding (`pidzero: ` first, as configuration errors
/// of a run are shown) and their count, on stderr.
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
        for problem in &report.problems {
            out.stdout += &format!("{}{problem}\n", prefix(problem.severity));
        }
    } else {
        for problem in &report.problems {
            out.stderr += &format!("pidzero: {}{problem}\n", prefix(problem.severity));
        }
        out.stderr += &format!("pidzero: {errors} problem(s) found\n");
    }
    out
}

/// One JSON array of every finding, one object per line (so `grep` works
/// too), `[]` when there is none: always one document for `jq`.
pub fn json(report: &Report) -> Result<String, serde_json::Error> {
    if report.problems.is_empty() {
        return Ok("[]\n".to_owned());
    }
    let lines = report
        .problems
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("[\n{}\n]\n", lines.join(",\n")))
}
