//! Turning a one-string `command` into an argv (§4).
//!
//! The rule is deliberately character-based, like Perl's and Ruby's one-string
//! `exec`: if any shell metacharacter appears anywhere in the string, the whole
//! string goes to `/bin/sh -c`, even when that character sits inside quotes
//! (`echo '$HOME'` runs through the shell). A user can always predict the outcome
//! by looking for the characters, without reasoning about quoting; running a
//! quoted metacharacter through the shell is harmless because the shell honours
//! the same quotes.

/// The shell that runs commands with shell syntax.
pub const SHELL: &str = "/bin/sh";

/// Characters that make a command string run through `/bin/sh -c` (§4).
const SHELL_CHARS: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '*', '?', '[', ']', '#', '~', '`', '\n',
];

/// Whether `line` must be run by `/bin/sh -c` rather than split into words.
///
/// True when any character of §4 appears (quoted or not), or when the first word is
/// a `VAR=value` assignment, which only a shell understands.
pub fn has_shell_syntax(line: &str) -> bool {
    line.contains(SHELL_CHARS) || starts_with_assignment(line)
}

/// Whether the first word of `line` looks like `NAME=...` with a valid shell name.
fn starts_with_assignment(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    let Some((name, _)) = first.split_once('=') else {
        return false;
    };
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    starts_well && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The argv for a one-string command: `["/bin/sh", "-c", line]` for shell syntax,
/// else the words of `line` under POSIX quoting rules.
///
/// Errors (returned as a message for the `command` field): an unbalanced quote or a
/// string with no words at all, since there would be nothing to execute.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    if has_shell_syntax(line) {
        return Ok(vec![SHELL.to_owned(), "-c".to_owned(), line.to_owned()]);
    }
    let words = shell_words::split(line).map_err(|e| format!("cannot split command: {e}"))?;
    if words.is_empty() {
        return Err("command is empty".to_owned());
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_trigger_character_means_shell() {
        for c in [
            "|", "&", ";", "<", ">", "(", ")", "$", "*", "?", "[", "]", "#", "~", "`", "\n",
        ] {
            let line = format!("echo a{c}b");
            assert!(has_shell_syntax(&line), "{line:?} should be shell syntax");
            assert_eq!(
                split_command(&line).unwrap(),
                vec!["/bin/sh".to_owned(), "-c".to_owned(), line.clone()]
            );
        }
    }

    #[test]
    fn leading_assignment_means_shell() {
        assert!(has_shell_syntax("FOO=bar server"));
        assert!(has_shell_syntax("  _X1=\"a b\" server"));
        assert!(!has_shell_syntax("server --opt=1"));
        assert!(!has_shell_syntax("1X=bar server"));
        assert!(!has_shell_syntax("=bar server"));
    }

    #[test]
    fn quoted_dollar_still_counts() {
        assert!(has_shell_syntax("echo '$HOME'"));
    }

    #[test]
    fn plain_quoted_string_is_split() {
        let line = r#"nginx -g 'daemon off' --name "my server" a\ b"#;
        assert!(!has_shell_syntax(line));
        assert_eq!(
            split_command(line).unwrap(),
            vec!["nginx", "-g", "daemon off", "--name", "my server", "a b"]
        );
    }

    #[test]
    fn empty_and_unbalanced_are_errors() {
        assert_eq!(split_command("   ").unwrap_err(), "command is empty");
        assert_eq!(split_command("").unwrap_err(), "command is empty");
        assert!(split_command("echo 'oops").is_err());
        assert!(split_command("echo \"oops").is_err());
    }
}
