//! What `--help` tells a newcomer: COMMAND is only the main command,
//! subcommands are called so, and every argument says what it takes.

mod common;

use std::process::Command;

use common::*;

fn help(args: &[&str]) -> String {
    let (exit, out, err) = run_cmd(Command::new(bin()).args(args), DEADLINE);
    assert_eq!(exit.code, Some(0), "{err}");
    out
}

#[test]
fn command_means_the_main_command_and_subcommands_are_called_so() {
    let text = help(&["--help"]);
    assert!(
        text.contains("Usage: pidzero [OPTIONS] [-- <COMMAND>...] [SUBCOMMAND]"),
        "{text}"
    );
    assert!(text.contains("\nSubcommands:\n"), "{text}");
    assert!(!text.contains("\nCommands:\n"), "{text}");
    assert!(text.contains("PIDZERO_LOG_FORMAT"), "{text}");
    for option in ["--verbose", "--remap-exit", "--parent-death-signal"] {
        assert!(text.contains(option), "{option} missing:\n{text}");
    }
}

#[test]
fn name_and_signal_are_described() {
    let text = help(&["signal", "--help"]);
    assert!(text.contains("<NAME>    The daemon's name"), "{text}");
    assert!(text.contains("<SIGNAL>  A signal name"), "{text}");
    for sub in ["start", "stop", "restart"] {
        let text = help(&[sub, "--help"]);
        assert!(text.contains("<NAME>  The daemon's name"), "{sub}:\n{text}");
    }
    // `logs --reopen` takes no NAME, so it is optional there.
    let text = help(&["logs", "--help"]);
    assert!(text.contains("[NAME]  The daemon's name"), "logs:\n{text}");
    assert!(text.contains("--reopen"), "logs:\n{text}");
}
