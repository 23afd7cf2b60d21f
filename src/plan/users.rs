//! Resolving `user` (§2) from the container's own `/etc/passwd` and `/etc/group`.
//!
//! pidzero is a static binary, so it cannot rely on NSS (`getpwnam`): it reads the
//! two files itself, which is also what Docker and runc do for `--user`.
//!
//! Decisions, following Docker where the spec is silent:
//! - An all-digit user is a uid; a uid with no passwd entry gets gid 0 and no name
//!   or home (Docker's behaviour), and no supplementary groups beyond its gid.
//! - An all-digit group is a gid, used even when no group entry has it.
//! - Supplementary groups: the primary gid, then every group that lists the user's
//!   name as a member, in file order, without duplicates. `name:group` and
//!   `uid:gid` only replace the primary gid.
//! - Lines that are blank, comments, NIS markers (`+`/`-`) or malformed are skipped.

use std::path::PathBuf;

/// Resolved identity a daemon runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIds {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups for `setgroups`; includes `gid`.
    pub groups: Vec<u32>,
    /// Login name, when the uid has a passwd entry.
    pub name: Option<String>,
    /// Home directory from passwd, when known and not empty.
    pub home: Option<PathBuf>,
}

/// One useful passwd line.
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

/// One useful group line.
struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

/// Resolves `name`, `uid`, `name:group` or `uid:gid` against passwd and group text.
///
/// Errors are messages for the `user` field naming what is unknown.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<UserIds, String> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    if user_part.is_empty() {
        return Err(format!("no user name or uid in {spec:?}"));
    }
    let mut ids = lookup_user(user_part, passwd)?;
    if let Some(group_part) = group_part {
        ids.gid = lookup_group(group_part, group)?;
    }
    ids.groups = supplementary_groups(ids.name.as_deref(), ids.gid, group);
    Ok(ids)
}

/// The uid, primary gid, name and home for the user part of the spec.
fn lookup_user(user: &str, passwd: &str) -> Result<UserIds, String> {
    let by_uid = parse_id(user, "uid")?;
    let entry = passwd_entries(passwd).find(|e| match by_uid {
        Some(uid) => e.uid == uid,
        None => e.name == user,
    });
    match (entry, by_uid) {
        (Some(e), _) => Ok(UserIds {
            uid: e.uid,
            gid: e.gid,
            groups: Vec::new(),
            name: Some(e.name.to_owned()),
            home: (!e.home.is_empty()).then(|| PathBuf::from(e.home)),
        }),
        (None, Some(uid)) => Ok(UserIds {
            uid,
            gid: 0,
            groups: Vec::new(),
            name: None,
            home: None,
        }),
        (None, None) => Err(format!("unknown user {user:?} (not in passwd)")),
    }
}

/// The gid for the group part of the spec: numeric as is, else looked up by name.
fn lookup_group(group_name: &str, group: &str) -> Result<u32, String> {
    if group_name.is_empty() {
        return Err("empty group after ':'".to_owned());
    }
    if let Some(gid) = parse_id(group_name, "gid")? {
        return Ok(gid);
    }
    group_entries(group)
        .find(|g| g.name == group_name)
        .map(|g| g.gid)
        .ok_or_else(|| format!("unknown group {group_name:?} (not in group file)"))
}

/// `gid` first, then the groups listing `name` as a member, deduplicated.
fn supplementary_groups(name: Option<&str>, gid: u32, group: &str) -> Vec<u32> {
    let mut groups = vec![gid];
    let Some(name) = name else {
        return groups;
    };
    for entry in group_entries(group) {
        let member = entry.members.split(',').any(|m| m.trim() == name);
        if member && !groups.contains(&entry.gid) {
            groups.push(entry.gid);
        }
    }
    groups
}

/// `Some(id)` for an all-digit string, `None` for a name; an error when out of range.
fn parse_id(text: &str, what: &str) -> Result<Option<u32>, String> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{what} {text} is out of range"))
}

/// Lines worth parsing: not blank, not comments, not NIS `+`/`-` entries.
fn content_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.starts_with(['#', '+', '-']))
}

/// `name:password:uid:gid:gecos:home:shell` lines; malformed ones are skipped.
fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    content_lines(text).filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        Some(PasswdEntry {
            name: fields.first()?,
            uid: fields.get(2)?.parse().ok()?,
            gid: fields.get(3)?.parse().ok()?,
            home: fields.get(5).copied().unwrap_or(""),
        })
    })
}

/// `name:password:gid:member,member` lines; malformed ones are skipped.
fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    content_lines(text).filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        Some(GroupEntry {
            name: fields.first()?,
            gid: fields.get(2)?.parse().ok()?,
            members: fields.get(3).copied().unwrap_or(""),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken line
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001::::
";
    const GROUP: &str = "\
root:x:0:
daemon:x:1:
wheel:x:10:root,app
app:x:1000:
audio:x:29:daemon, app
www:x:33:
again:x:10:app
";

    #[test]
    fn by_name() {
        let ids = resolve_user("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            ids,
            UserIds {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 10, 29],
                name: Some("app".into()),
                home: Some("/home/app".into()),
            }
        );
    }

    #[test]
    fn by_uid_known() {
        let ids = resolve_user("1", PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid), (1, 1));
        assert_eq!(ids.name.as_deref(), Some("daemon"));
        assert_eq!(ids.groups, vec![1, 29]);
    }

    #[test]
    fn by_uid_unknown_follows_docker() {
        let ids = resolve_user("4242", PASSWD, GROUP).unwrap();
        assert_eq!(
            ids,
            UserIds {
                uid: 4242,
                gid: 0,
                groups: vec![0],
                name: None,
                home: None
            }
        );
    }

    #[test]
    fn name_and_group() {
        let ids = resolve_user("app:www", PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid), (1000, 33));
        assert_eq!(ids.groups, vec![33, 10, 29]);
    }

    #[test]
    fn uid_and_gid() {
        let ids = resolve_user("1000:5000", PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid), (1000, 5000));
        assert_eq!(ids.groups, vec![5000, 10, 29]);
        let ids = resolve_user("7:8", "", "").unwrap();
        assert_eq!((ids.uid, ids.gid, ids.groups), (7, 8, vec![8]));
    }

    #[test]
    fn empty_home_is_none() {
        assert_eq!(resolve_user("nohome", PASSWD, GROUP).unwrap().home, None);
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = resolve_user("ghost", PASSWD, GROUP).unwrap_err();
        assert!(err.contains("\"ghost\""), "{err}");
        let err = resolve_user("app:ghosts", PASSWD, GROUP).unwrap_err();
        assert!(err.contains("\"ghosts\""), "{err}");
        assert!(resolve_user(":www", PASSWD, GROUP).is_err());
        assert!(resolve_user("app:", PASSWD, GROUP).is_err());
        assert!(resolve_user("99999999999", PASSWD, GROUP).is_err());
    }

    #[test]
    fn missing_files_allow_numeric_only() {
        assert_eq!(resolve_user("5", "", "").unwrap().uid, 5);
        assert!(resolve_user("app", "", "").is_err());
    }
}
