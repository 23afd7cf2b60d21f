//! A daemon's environment: pidzero's own, with the daemon's entries applied on top.

use std::ffi::{OsStr, OsString};

use super::users::UserIds;

/// `base` with `overrides` applied in order: an existing key keeps its place and takes
/// the new value, a new key is appended, so later entries win and pidzero's order
/// stays stable (diffs and `env` output stay readable).
pub fn merge_env(
    base: &[(OsString, OsString)],
    overrides: &[(String, String)],
) -> Vec<(OsString, OsString)> {
    let mut env = base.to_vec();
    for (key, value) in overrides {
        set_var(&mut env, OsStr::new(key), OsStr::new(value));
    }
    env
}

/// Sets `key` in place (every occurrence, so no stale duplicate survives), or appends it.
pub fn set_var(env: &mut Vec<(OsString, OsString)>, key: &OsStr, value: &OsStr) {
    let mut found = false;
    for (_, v) in env.iter_mut().filter(|(k, _)| k == key) {
        *v = value.to_owned();
        found = true;
    }
    if !found {
        env.push((key.to_owned(), value.to_owned()));
    }
}

/// The value of `key`, if set.
pub fn get_var<'a>(env: &'a [(OsString, OsString)], key: &str) -> Option<&'a OsStr> {
    env.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_os_str())
}

/// Sets `HOME`, `USER` and `LOGNAME` for a daemon that runs as another user, unless its
/// own `environment` sets them, so programs do not write into root's home.
///
/// Like `login` and `su -`: `HOME` from passwd; `/` when the user has no passwd entry
/// or an empty home (Docker's choice). `USER`/`LOGNAME` only when the name is known;
/// otherwise they are left as inherited.
pub fn apply_user_vars(
    env: &mut Vec<(OsString, OsString)>,
    user: &UserIds,
    daemon_env: &[(String, String)],
) {
    let set_by_daemon = |key: &str| daemon_env.iter().any(|(k, _)| k == key);
    if !set_by_daemon("HOME") {
        let home = user
            .home
            .as_deref()
            .map_or(OsStr::new("/"), |h| h.as_os_str());
        set_var(env, OsStr::new("HOME"), home);
    }
    if let Some(name) = &user.name {
        for key in ["USER", "LOGNAME"] {
            if !set_by_daemon(key) {
                set_var(env, OsStr::new(key), OsStr::new(name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn daemon_env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn daemon_entries_win_and_order_is_stable() {
        let base = os_env(&[("PATH", "/bin"), ("HOME", "/root"), ("LANG", "C")]);
        let env = merge_env(
            &base,
            &daemon_env(&[("HOME", "/srv"), ("NEW", "1"), ("NEW", "2"), ("PATH", "/x")]),
        );
        assert_eq!(
            env,
            os_env(&[
                ("PATH", "/x"),
                ("HOME", "/srv"),
                ("LANG", "C"),
                ("NEW", "2")
            ])
        );
        assert_eq!(get_var(&env, "NEW"), Some(OsStr::new("2")));
        assert_eq!(get_var(&env, "NOPE"), None);
    }

    #[test]
    fn user_vars_set_unless_daemon_sets_them() {
        let user = UserIds {
            uid: 1,
            gid: 1,
            groups: vec![1],
            name: Some("app".into()),
            home: Some("/home/app".into()),
        };
        let mut env = os_env(&[("HOME", "/root"), ("USER", "custom")]);
        apply_user_vars(&mut env, &user, &daemon_env(&[("USER", "custom")]));
        assert_eq!(
            env,
            os_env(&[
                ("HOME", "/home/app"),
                ("USER", "custom"),
                ("LOGNAME", "app")
            ])
        );

        let nobody = UserIds {
            uid: 9,
            gid: 0,
            groups: vec![0],
            name: None,
            home: None,
        };
        let mut env = os_env(&[("HOME", "/root")]);
        apply_user_vars(&mut env, &nobody, &[]);
        assert_eq!(env, os_env(&[("HOME", "/")]));
    }
}
