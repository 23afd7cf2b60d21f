//! `pidzero reload`: what the answer of `POST /reload` says, for people.

use std::io::Write;

use crate::api::ReloadAnswer;

/// One line per non-empty list (`started: a, b`), in the answer's order;
/// warnings go to `err`. `None` when the answer is not a reload answer.
pub fn print_answer(body: &[u8], out: &mut dyn Write, err: &mut dyn Write) -> Option<()> {
    let answer: ReloadAnswer = serde_json::from_slice(body).ok()?;
    let lists = [
        ("started", &answer.started),
        ("stopped", &answer.stopped),
        ("restarted", &answer.restarted),
        ("updated", &answer.updated),
        ("kept", &answer.kept),
    ];
    let _ = writeln!(out, "pidzero: reloaded");
    for (what, names) in lists.iter().filter(|(_, names)| !names.is_empty()) {
        let _ = writeln!(out, "{what}: {}", names.join(", "));
    }
    for warning in &answer.warnings {
        let _ = writeln!(err, "pidzero: warning: {warning}");
    }
    Some(())
}

/// The `errors` of a refused reload (422), one per line, each
/// `file:line:col: ...`, after the server's message.
pub fn print_errors(body: &[u8], err: &mut dyn Write) {
    #[derive(serde::Deserialize)]
    struct Refused {
        #[serde(default)]
        errors: Vec<String>,
    }
    if let Ok(refused) = serde_json::from_slice::<Refused>(body) {
        for error in refused.errors {
            let _ = writeln!(err, "pidzero: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_each_non_empty_list_and_warns_on_stderr() {
        let body = br#"{"started":["new"],"stopped":["gone"],"restarted":[],"kept":["a","b"],"updated":[],"warnings":["w"]}"#;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(print_answer(body, &mut out, &mut err), Some(()));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "pidzero: reloaded\nstarted: new\nstopped: gone\nkept: a, b\n"
        );
        assert_eq!(String::from_utf8(err).unwrap(), "pidzero: warning: w\n");
    }

    #[test]
    fn refused_reloads_list_every_error() {
        let body = br#"{"error":"invalid","errors":["d.json:2:3: x","d.json:4:1: y"]}"#;
        let mut err = Vec::new();
        print_errors(body, &mut err);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "pidzero: d.json:2:3: x\npidzero: d.json:4:1: y\n"
        );
    }
}
