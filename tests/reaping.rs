//! §6 Reaping: every child is reaped, daemons and adopted orphans alike.

mod common;

use common::*;

/// A daemon that creates `n` orphans by double fork (each exits at once and
/// is re-parented to pidzero), then logs `orphans-done` and stays up.
fn orphan_maker(d: &Dir, n: u32) {
    let script = d.script(
        "orphans.sh",
        &format!(
            "i=0\nwhile [ $i -lt {n} ]; do ( /bin/true & ); i=$((i+1)); done\necho orphans-done\nwhile :; do sleep 0.05; done"
        ),
    );
    d.daemons(&format!(
        r#"[{{"name": "orphans", "vital": true, "command": [{}]}}]"#,
        js(&script)
    ));
}

fn no_zombies_after_orphans(r: &mut Running) {
    r.wait_record("orphans-done", secs(60.0), |r| {
        is_line(r, "orphans", "orphans-done")
    });
    let pid = r.pid;
    let clean = wait_until(DEADLINE, || zombie_children(pid).is_empty());
    assert!(
        clean.is_some(),
        "zombies left under pidzero ({pid}): {:?}\n{}",
        zombie_children(pid),
        r.dump()
    );
    r.assert_running();
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
}

#[test]
fn reaps_500_orphans_as_pid1() {
    let d = Dir::new("reap-ns");
    orphan_maker(&d, 500);
    let Some(b) = pz().config_dir(&d).ns("reaps_500_orphans_as_pid1") else {
        return;
    };
    let mut r = b.spawn();
    no_zombies_after_orphans(&mut r);
}

#[test]
fn reaps_orphans_as_subreaper() {
    let d = Dir::new("reap-sub");
    orphan_maker(&d, 200);
    let mut r = pz().config_dir(&d).spawn();
    no_zombies_after_orphans(&mut r);
}

#[test]
fn adopts_orphans_when_not_pid1() {
    // pidzero is a child subreaper: an orphan of a daemon becomes its child.
    let d = Dir::new("subreaper");
    d.daemons(
        r#"[{"name": "o", "vital": true, "command": ["/bin/sh", "-c", "(sleep 300 & echo orphan=$!); while :; do sleep 0.05; done"]}]"#,
    );
    let r = pz().config_dir(&d).spawn();
    let rec = r.wait_record("orphan=PID", DEADLINE, |r| {
        r["source"] == "o" && r["line"].as_str().unwrap_or("").starts_with("orphan=")
    });
    let orphan: i32 = rec["line"].as_str().unwrap()[7..].parse().unwrap();
    let pid = r.pid;
    let adopted = wait_until(DEADLINE, || ppid(orphan) == Some(pid));
    let seen = ppid(orphan);
    kill(orphan, libc::SIGKILL);
    assert!(
        adopted.is_some(),
        "orphan {orphan} has parent {seen:?}, not pidzero {pid}"
    );
}

#[test]
fn daemon_sees_pidzero_as_pid1_in_namespace() {
    let d = Dir::new("nspid1");
    d.daemons(r#"[{"name": "p", "command": ["/bin/sh", "-c", "echo ppid=$PPID"]}]"#);
    let Some(b) = pz()
        .config_dir(&d)
        .ns("daemon_sees_pidzero_as_pid1_in_namespace")
    else {
        return;
    };
    let f = b.run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(
        f.find(|r| is_line(r, "p", "ppid=1")).is_some(),
        "{}",
        f.dump()
    );
}
