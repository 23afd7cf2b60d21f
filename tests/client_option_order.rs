//! The client options (`--socket`, `--url`, `--token`) are not global any
//! more (so `check` does not offer them); given before the subcommand they
//! must still win over their environment variables, as they did.

mod common;

use std::process::Command;

use common::*;

fn client(args: &[&str], env: &[(&str, &str)]) -> (Exit, String) {
    let mut cmd = Command::new(bin());
    without_pidzero_env(&mut cmd).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (exit, _, stderr) = run_cmd(&mut cmd, DEADLINE);
    (exit, stderr)
}

#[test]
fn an_option_before_the_subcommand_beats_the_variable() {
    let refused = "https is not supported";
    let env = [("PIDZERO_URL", "https://example.invalid:1")];
    // The variable alone is used (and refused, which shows it was read).
    let (exit, err) = client(&["health"], &env);
    assert_eq!(exit.code, Some(2), "{err}");
    assert!(err.contains(refused), "{err}");
    // An option, before or after the subcommand's name, wins over it.
    let dir = Dir::new("option-order");
    let socket = dir.s("none.sock");
    for args in [
        ["--url", "http://127.0.0.1:1", "health"],
        ["health", "--url", "http://127.0.0.1:1"],
    ] {
        let (exit, err) = client(&args, &env);
        assert_eq!(exit.code, Some(2), "{args:?}: {err}");
        assert!(!err.contains(refused), "{args:?}: {err}");
    }
    let env = [("PIDZERO_SOCKET", "/nonexistent-pz/env.sock")];
    for args in [
        ["--socket", socket.as_str(), "health"],
        ["health", "--socket", socket.as_str()],
    ] {
        let (_, err) = client(&args, &env);
        assert!(err.contains(&socket), "{args:?}: {err}");
    }
}
