//! What a reload changes: the running set against a newly built plan.
//!
//! Pure: names, rules and launch specs in, a verdict per daemon out, so that
//! every rule of "what counts as changed" is unit-tested without processes.
//! Daemons are matched by name. A daemon of the new plan is:
//! - **added** when no running daemon has its name (it starts);
//! - **changed** when anything that affects its process differs: its launch
//!   spec (argv, program, environment, user, working dir, output, health
//!   probe, line route) or any rule not listed in `in_place_rules` (health
//!   timing, schedule, and every rule added later, so new fields restart by
//!   default); it is restarted;
//! - **updated** when only rules that apply in place differ (`vital`, the
//!   restart policy, stop signal and timeout, `depends_on`): its process is
//!   left alone, the supervisor takes the new rules;
//! - **kept** when nothing differs.
//!
//! A running daemon whose name is not in the new plan is **removed** (stopped).

use super::{DaemonRules, Launch, Plan};
use crate::config::RestartPolicy;
use std::time::Duration;

/// One daemon of the running set, as the diff needs it.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    /// Where the caller keeps it (the supervisor's index).
    pub index: usize,
    pub rules: &'a DaemonRules,
    pub launch: &'a Launch,
    /// The names its `depends_on` indices stand for (indices are not
    /// comparable across plans, names are).
    pub depends_on: &'a [String],
}

/// What one daemon of the new plan is to the running set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    /// Same process, same rules: untouched (restart counters included).
    Kept(usize),
    /// Same process, new in-place rules.
    Updated(usize),
    /// Its process must be restarted with the new launch spec.
    Changed(usize),
}

/// The verdicts of a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// One per daemon of the new plan, in its order.
    pub daemons: Vec<Change>,
    /// The running daemons (by the caller's index) not in the new plan.
    pub removed: Vec<usize>,
}

/// Compares the running set with `new`.
pub fn diff(current: &[Current<'_>], new: &Plan) -> Diff {
    let names = |deps: &[usize]| -> Vec<&str> {
        deps.iter()
            .filter_map(|&d| new.daemons.get(d))
            .map(|d| d.rules.name.as_str())
            .collect()
    };
    let daemons = new
        .daemons
        .iter()
        .map(|planned| {
            let Some(old) = current.iter().find(|c| c.rules.name == planned.rules.name) else {
                return Change::Added;
            };
            if old.launch != &planned.launch
                || process_rules(old.rules) != process_rules(&planned.rules)
            {
                return Change::Changed(old.index);
            }
            let old_deps: Vec<&str> = old.depends_on.iter().map(String::as_str).collect();
            if in_place_rules(old.rules) != in_place_rules(&planned.rules)
                || old_deps != names(&planned.rules.depends_on)
            {
                Change::Updated(old.index)
            } else {
                Change::Kept(old.index)
            }
        })
        .collect();
    let removed = current
        .iter()
        .filter(|c| !new.daemons.iter().any(|d| d.rules.name == c.rules.name))
        .map(|c| c.index)
        .collect();
    Diff { daemons, removed }
}

/// The rules a reload applies without a restart, as a tuple to compare.
/// `depends_on` is compared by name in [`diff`]; `preflight_failure` is
/// derived from the launch's program (compared there).
fn in_place_rules(
    rules: &DaemonRules,
) -> (bool, RestartPolicy, Duration, Option<u32>, i32, Duration) {
    (
        rules.vital,
        rules.restart,
        rules.restart_delay,
        rules.max_restarts,
        rules.stop_signal,
        rules.stop_timeout,
    )
}

/// The rules with every in-place field blanked: what is left affects the
/// process. Written as "everything but these", so that a field added to
/// [`DaemonRules`] later counts as process-affecting without an edit here.
fn process_rules(rules: &DaemonRules) -> DaemonRules {
    DaemonRules {
        name: String::new(),
        vital: false,
        restart: RestartPolicy::Never,
        restart_delay: Duration::ZERO,
        max_restarts: None,
        stop_signal: 0,
        stop_timeout: Duration::ZERO,
        depends_on: Vec::new(),
        preflight_failure: None,
        ..rules.clone()
    }
}

#[cfg(test)]
mod tests;
