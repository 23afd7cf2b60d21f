//! The verdicts of a reload, on plans built by hand (no files, no processes).

use super::*;
use crate::config::{LineRoute, OutputMode};
use crate::plan::DaemonPlan;
use std::path::PathBuf;

fn launch(argv: &[&str]) -> Launch {
    Launch {
        argv: argv.iter().map(|a| a.to_string()).collect(),
        program: PathBuf::from(argv[0]),
        env: vec![("PATH".into(), "/bin".into())],
        working_dir: None,
        user: None,
        output: OutputMode::Log,
        inherit_stdin: false,
        probe: None,
        route: LineRoute::default(),
        ready: crate::plan::rules::ReadyMode::Started,
        watchdog: None,
    }
}

fn daemon(name: &str, argv: &[&str]) -> DaemonPlan {
    DaemonPlan {
        rules: DaemonRules::named(name),
        launch: launch(argv),
    }
}

/// A plan of `daemons` in file order, started in file order.
fn plan(daemons: Vec<DaemonPlan>) -> Plan {
    let start_order = (0..daemons.len()).collect();
    Plan {
        daemons,
        start_order,
    }
}

/// The running set as the runtime would pass it: the old plan's daemons at
/// their indices, with their dependency names.
fn current_of(old: &Plan) -> (Vec<Vec<String>>, Vec<(usize, DaemonPlan)>) {
    let deps = old
        .daemons
        .iter()
        .map(|d| {
            d.rules
                .depends_on
                .iter()
                .map(|&i| old.daemons[i].rules.name.clone())
                .collect()
        })
        .collect();
    (deps, old.daemons.iter().cloned().enumerate().collect())
}

fn run_diff(old: &Plan, new: &Plan) -> Diff {
    let (deps, daemons) = current_of(old);
    let current: Vec<Current<'_>> = daemons
        .iter()
        .zip(&deps)
        .map(|((index, d), deps)| Current {
            index: *index,
            rules: &d.rules,
            launch: &d.launch,
            depends_on: deps,
        })
        .collect();
    diff(&current, new)
}

#[test]
fn added_removed_changed_and_kept() {
    let old = plan(vec![
        daemon("keep", &["/bin/sleep", "100"]),
        daemon("gone", &["/bin/sleep", "100"]),
        daemon("edit", &["/bin/sleep", "100"]),
    ]);
    let new = plan(vec![
        daemon("edit", &["/bin/sleep", "200"]),
        daemon("keep", &["/bin/sleep", "100"]),
        daemon("new", &["/bin/true"]),
    ]);
    let d = run_diff(&old, &new);
    assert_eq!(
        d.daemons,
        [Change::Changed(2), Change::Kept(0), Change::Added]
    );
    assert_eq!(d.removed, [1]);
}

#[test]
fn an_environment_only_change_restarts() {
    let old = plan(vec![daemon("web", &["/bin/web"])]);
    let mut new = old.clone();
    new.daemons[0]
        .launch
        .env
        .push(("MODE".into(), "fast".into()));
    assert_eq!(run_diff(&old, &new).daemons, [Change::Changed(0)]);
}

#[test]
fn policy_fields_apply_in_place() {
    let old = plan(vec![daemon("web", &["/bin/web"])]);
    let edits: [fn(&mut DaemonRules); 6] = [
        |r| r.vital = true,
        |r| r.restart = RestartPolicy::Always,
        |r| r.restart_delay = Duration::from_secs(5),
        |r| r.max_restarts = Some(3),
        |r| r.stop_signal = libc::SIGINT,
        |r| r.stop_timeout = Duration::from_secs(1),
    ];
    for edit in edits {
        let mut new = old.clone();
        edit(&mut new.daemons[0].rules);
        assert_eq!(run_diff(&old, &new).daemons, [Change::Updated(0)]);
    }
}

#[test]
fn process_rules_restart_and_so_does_any_other_rule() {
    let old = plan(vec![daemon("web", &["/bin/web"])]);
    // A health check's timing is a rule, not an in-place one.
    let mut new = old.clone();
    new.daemons[0].rules.health = Some(crate::plan::HealthRules {
        interval: Duration::from_secs(1),
        retries: 1,
        start_period: Duration::ZERO,
    });
    assert_eq!(run_diff(&old, &new).daemons, [Change::Changed(0)]);
    // The output mode is part of the launch.
    let mut new = old.clone();
    new.daemons[0].launch.output = OutputMode::Discard;
    assert_eq!(run_diff(&old, &new).daemons, [Change::Changed(0)]);
}

#[test]
fn a_preflight_verdict_alone_is_no_change() {
    let old = plan(vec![daemon("web", &["/bin/web"])]);
    let mut new = old.clone();
    new.daemons[0].rules.preflight_failure = Some((127, "command not found".into()));
    assert_eq!(run_diff(&old, &new).daemons, [Change::Kept(0)]);
}

#[test]
fn dependencies_compare_by_name_and_update_in_place() {
    // Same names in another file order: the indices differ, the edges do not.
    let mut old = plan(vec![
        daemon("db", &["/bin/db"]),
        daemon("web", &["/bin/web"]),
    ]);
    old.daemons[1].rules.depends_on = vec![0];
    let mut same = plan(vec![
        daemon("web", &["/bin/web"]),
        daemon("db", &["/bin/db"]),
    ]);
    same.daemons[0].rules.depends_on = vec![1];
    same.start_order = vec![1, 0];
    assert_eq!(
        run_diff(&old, &same).daemons,
        [Change::Kept(1), Change::Kept(0)]
    );
    // A new edge to a daemon added in the same reload.
    let mut new = plan(vec![
        daemon("db", &["/bin/db"]),
        daemon("web", &["/bin/web"]),
        daemon("cache", &["/bin/cache"]),
    ]);
    new.daemons[1].rules.depends_on = vec![0, 2];
    new.start_order = vec![0, 2, 1];
    let d = run_diff(&old, &new);
    assert_eq!(
        d.daemons,
        [Change::Kept(0), Change::Updated(1), Change::Added]
    );
    // The added one starts before the kept one that now needs it.
    let touched: Vec<usize> = new
        .start_order
        .iter()
        .copied()
        .filter(|&i| !matches!(d.daemons[i], Change::Kept(_)))
        .collect();
    assert_eq!(touched, [2, 1]);
}

#[test]
fn a_new_rules_field_counts_as_a_process_change() {
    // `process_rules` blanks a fixed list; everything else compares.
    // `is_main`, which that list does not name, stands for any field added
    // to the rules later.
    let old = plan(vec![daemon("tick", &["/bin/tick"])]);
    let mut new = old.clone();
    new.daemons[0].rules.is_main = true;
    assert_eq!(run_diff(&old, &new).daemons, [Change::Changed(0)]);
}
