//! Start order from `depends_on`: a stable topological sort, and cycle reporting.

use std::collections::{BTreeSet, HashMap};

use crate::config::DaemonSpec;

/// Each daemon's dependencies as indices (deduplicated, in listed order), and the
/// names that match no daemon as `(daemon index, unknown name)`.
pub fn resolve_dependencies(specs: &[DaemonSpec]) -> (Vec<Vec<usize>>, Vec<(usize, String)>) {
    let mut index = HashMap::new();
    for (i, spec) in specs.iter().enumerate() {
        index.entry(spec.name.as_str()).or_insert(i);
    }
    let mut unknown = Vec::new();
    let deps = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut deps = Vec::new();
            for name in &spec.depends_on {
                match index.get(name.as_str()) {
                    Some(&d) if !deps.contains(&d) => deps.push(d),
                    Some(_) => {}
                    None => unknown.push((i, name.clone())),
                }
            }
            deps
        })
        .collect();
    (deps, unknown)
}

/// A start order in which every daemon comes after its dependencies.
///
/// Kahn's algorithm always taking the lowest-indexed ready daemon, so independent
/// daemons keep their file order and the result is deterministic. On cycles, returns
/// each distinct cycle as indices starting at its lowest index, in file order.
pub fn start_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<Vec<usize>>> {
    let mut waiting_on: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..deps.len()).filter(|&i| waiting_on[i] == 0).collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(next) = ready.pop_first() {
        order.push(next);
        for &dependent in &dependents[next] {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.insert(dependent);
            }
        }
    }
    if order.len() == deps.len() {
        return Ok(order);
    }
    let mut stuck = vec![true; deps.len()];
    for &done in &order {
        stuck[done] = false;
    }
    Err(find_cycles(deps, &stuck))
}

/// The distinct cycles among `stuck` daemons (those Kahn's algorithm could not order).
///
/// Every stuck daemon has a stuck dependency, so following the first one from any
/// stuck daemon must come back to a daemon already on the path: that loop is a cycle.
/// Daemons that merely depend on a cycle lead to an already reported one and are skipped.
fn find_cycles(deps: &[Vec<usize>], stuck: &[bool]) -> Vec<Vec<usize>> {
    let mut reported = vec![false; deps.len()];
    let mut cycles = Vec::new();
    for start in (0..deps.len()).filter(|&i| stuck[i]) {
        let mut path = vec![start];
        let cycle = loop {
            let current = path[path.len() - 1];
            let Some(&next) = deps[current].iter().find(|&&d| stuck[d]) else {
                break Vec::new(); // cannot happen for a stuck daemon; be safe
            };
            if let Some(at) = path.iter().position(|&p| p == next) {
                break path.split_off(at);
            }
            path.push(next);
        };
        if cycle.is_empty() || cycle.iter().any(|&c| reported[c]) {
            continue;
        }
        for &c in &cycle {
            reported[c] = true;
        }
        cycles.push(rotate_to_lowest(cycle));
    }
    cycles.sort();
    cycles
}

/// The same cycle, starting at its lowest index, so the report is stable.
fn rotate_to_lowest(mut cycle: Vec<usize>) -> Vec<usize> {
    if let Some(min_at) = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, &c)| c)
        .map(|(i, _)| i)
    {
        cycle.rotate_left(min_at);
    }
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn independent_daemons_keep_file_order() {
        assert_eq!(start_order(&[vec![], vec![], vec![]]), Ok(vec![0, 1, 2]));
    }

    #[test]
    fn dependencies_come_first_stably() {
        // 0 depends on 2; 1 is independent; 3 depends on 0.
        let deps = vec![vec![2], vec![], vec![], vec![0]];
        assert_eq!(start_order(&deps), Ok(vec![1, 2, 0, 3]));
        // 0 depends on 1; 2 independent: 1 unlocks 0, which precedes 2 in file order.
        assert_eq!(start_order(&[vec![1], vec![], vec![]]), Ok(vec![1, 0, 2]));
    }

    #[test]
    fn cycles_are_found_and_rotated() {
        // 0 -> 1 -> 2 -> 0, 3 depends on the cycle, 4 -> 4.
        let deps = vec![vec![1], vec![2], vec![0], vec![1], vec![4]];
        assert_eq!(start_order(&deps), Err(vec![vec![0, 1, 2], vec![4]]));
        // Entering the cycle from a later node still reports it from its lowest index.
        let deps = vec![vec![], vec![2], vec![3], vec![1]];
        assert_eq!(start_order(&deps), Err(vec![vec![1, 2, 3]]));
    }
}
