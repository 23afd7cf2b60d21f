//! Fuzzing `pidzero check` on the stable toolchain: a seeded random driver
//! that mutates the committed corpus (`tests/corpus/config/`) and runs the
//! real binary on each mutant. Every answer must be exit 0, or exit 2 with
//! every problem on a line `pidzero: FILE:LINE:COL: ...`; never a panic, a
//! signal, another status or a hang.
//!
//! In the normal test run it is a smoke of a few hundred inputs. A long run:
//! `PIDZERO_FUZZ_ITERS=100000 PIDZERO_FUZZ_SEED=7 cargo test --release --test fuzz_config`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::fuzz::{self, Rng};
use common::*;

/// Values and fragments a hand-written config gets wrong.
const TOKENS: &[&str] = &[
    "0",
    "-1",
    "1e309",
    "18446744073709551616",
    "0.0001",
    "-0.5",
    "1e-400",
    "\"\"",
    "[]",
    "{}",
    "null",
    "true",
    "false",
    "\"TERM\"",
    "\"SIGKILL\"",
    "99999999999",
    "\"a\"",
    "\"\\u0000\"",
    "\"\u{feff}\"",
    "\"../../etc\"",
    "\"always\"",
    "\"on-failure\"",
    "\"inherit\"",
    "\"0:0\"",
    "\"nobody\"",
    "\"x:y:z\"",
    "\"unix:///x\"",
    "\"999.1.1.1:99999\"",
    "\"http://[::1]:0/\"",
    "{\"command\":\"true\"}",
    "{\"tcp\":\"127.0.0.1:1\"}",
    "[\"web\"]",
    "\"\\ud800\"",
];

/// Keys a mutation inserts: every key pidzero knows, and a misspelt one.
fn keys() -> Vec<&'static str> {
    let mut keys = pidzero::config::known_keys();
    keys.push("vitall");
    keys
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let keys = keys();
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(9) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            1 => out.insert(at, *rng.pick(b"{}[]\",:\\ \n0-e.\xef\xbb\xbf\xff")),
            2 if at < out.len() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 => out.truncate(at),
            4 => {
                // Replace the value after a colon with a token.
                if let Some(colon) = out[at.min(out.len())..].iter().position(|&b| b == b':') {
                    let start = at + colon + 1;
                    let end = out[start..]
                        .iter()
                        .position(|&b| b == b',' || b == b'}' || b == b']')
                        .map_or(out.len(), |p| start + p);
                    out.splice(start..end, rng.pick(TOKENS).bytes());
                }
            }
            5 => {
                let field = format!("\"{}\": {}, ", rng.pick(&keys), rng.pick(TOKENS));
                // After an opening brace, so it lands as a member.
                if let Some(brace) = out[at.min(out.len())..].iter().position(|&b| b == b'{') {
                    let pos = at + brace + 1;
                    out.splice(pos..pos, field.bytes());
                }
            }
            6 => {
                let dup_from = rng.below(out.len() + 1);
                let dup_to = (dup_from + rng.below(64)).min(out.len());
                let piece = out[dup_from..dup_to].to_vec();
                let at = at.min(out.len());
                out.splice(at..at, piece);
            }
            7 => out.splice(at..at, rng.pick(TOKENS).bytes()).for_each(drop),
            _ => out.splice(at..at, rng.pick(&keys).bytes()).for_each(drop),
        }
    }
    out
}

fn corpus(prefix: &str) -> Vec<Vec<u8>> {
    let dir = manifest_dir().join("tests/corpus/config");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {prefix}* seeds in {}", dir.display());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Why `check`'s answer breaks the contract, if it does.
fn verdict(code: Option<i32>, stderr: &str, stdout: &str) -> Option<String> {
    match code {
        Some(0) => None,
        Some(2) => {
            let bad: Vec<&str> = stderr
                .lines()
                .filter(|l| !l.ends_with("problem(s) found"))
                .filter(|l| !has_position(l))
                .collect();
            if stderr.trim().is_empty() {
                Some("exit 2 with nothing on stderr".into())
            } else if bad.is_empty() {
                None
            } else {
                Some(format!("problems without FILE:LINE:COL: {bad:?}"))
            }
        }
        other => Some(format!(
            "exit {other:?}\nstdout: {stdout}\nstderr: {stderr}"
        )),
    }
}

/// `pidzero: PATH:LINE:COL: ...` where PATH names daemons.json or config.json.
fn has_position(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("pidzero: ") else {
        return false;
    };
    ["daemons.json:", "config.json:"].iter().any(|f| {
        rest.find(f).is_some_and(|at| {
            let mut parts = rest[at + f.len()..].splitn(3, ':');
            let line = parts.next().and_then(|s| s.parse::<u32>().ok());
            let col = parts.next().and_then(|s| s.parse::<u32>().ok());
            line.is_some() && col.is_some()
        })
    })
}

fn check_dir(dir: &Path) -> (Option<i32>, String, String) {
    let (exit, out, err) = run_cmd(
        std::process::Command::new(bin())
            .arg("check")
            .arg("--config-dir")
            .arg(dir),
        Duration::from_secs(20),
    );
    (exit.code, out, err)
}

#[test]
fn check_survives_mutated_configs() {
    let iters = fuzz::iterations(300);
    let seed = fuzz::seed(0x5eed_c0ff_ee15_0001);
    let mut rng = Rng(seed);
    let daemons = corpus("daemons-");
    let configs = corpus("config-");
    let d = Dir::new("fuzz-config");
    let mut failures = Vec::new();
    for i in 0..iters {
        let mut daemons_text = rng.pick(&daemons).clone();
        let mut config_text = rng.pick(&configs).clone();
        match rng.below(3) {
            0 => daemons_text = mutate(&mut rng, &daemons_text),
            1 => config_text = mutate(&mut rng, &config_text),
            _ => {
                daemons_text = mutate(&mut rng, &daemons_text);
                config_text = mutate(&mut rng, &config_text);
            }
        }
        std::fs::write(d.p("daemons.json"), &daemons_text).unwrap();
        std::fs::write(d.p("config.json"), &config_text).unwrap();
        let (code, out, err) = check_dir(&d.path);
        if let Some(why) = verdict(code, &err, &out) {
            failures.push(format!(
                "iteration {i} (seed {seed}): {why}\n--- daemons.json ---\n{}\n--- config.json ---\n{}",
                String::from_utf8_lossy(&daemons_text),
                String::from_utf8_lossy(&config_text)
            ));
            if failures.len() >= 5 {
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_seed_of_the_corpus_is_answered_as_expected() {
    let d = Dir::new("fuzz-seeds");
    for daemons in corpus("daemons-") {
        for config in corpus("config-") {
            std::fs::write(d.p("daemons.json"), &daemons).unwrap();
            std::fs::write(d.p("config.json"), &config).unwrap();
            let (code, out, err) = check_dir(&d.path);
            assert_eq!(verdict(code, &err, &out), None);
        }
    }
}
