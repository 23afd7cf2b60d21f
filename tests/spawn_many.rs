//! Starting many processes through the one spawn path (a child sharing
//! pidzero's memory until it execs): each child gets its own argv,
//! environment, output pipes and process group, never a neighbour's, and a
//! child whose exec fails is reaped by the spawn itself.

mod common;

use std::collections::BTreeMap;

use common::http::{try_http, Target};
use common::metrics::parse_metrics;
use common::*;
use serde_json::json;

const DAEMONS: usize = 200;

/// Records `$@`, the variables it was given, its pid and process group and
/// its working directory in `out/NAME`, says hello on stdout, and sleeps.
const RECORD: &str = r#"name=$1; shift
read -r stat < /proc/$$/stat
set -- "$@" "pgid=$(echo "${stat##*) }" | cut -d' ' -f3)"
{ printf '%s|' "$@"; printf 'pid=%s|D=%s|WEIRD=%s|pwd=%s|\n' "$$" "$D" "$WEIRD" "$PWD"; } > "$OUT/$name.tmp"
mv "$OUT/$name.tmp" "$OUT/$name"
echo "hello from $name"
exec sleep 1000
"#;

#[test]
fn two_hundred_daemons_each_start_with_their_own_argv_env_pipes_and_group() {
    let d = Dir::new("spawn-many");
    let Some(pz) = pz().config_dir(&d).ns("spawn_many") else {
        return;
    };
    std::fs::create_dir_all(d.p("out")).unwrap();
    std::fs::create_dir_all(d.p("wd")).unwrap();
    let record = d.write("record.sh", RECORD);
    let daemons: Vec<_> = (0..DAEMONS)
        .map(|i| {
            let mut daemon = json!({
                "name": format!("d{i}"),
                "command": ["/bin/sh", &record, format!("d{i}"), format!("arg {i}"), "", "ü"],
                "environment": {"D": format!("value-{i}"), "WEIRD": "x=y z", "OUT": d.s("out")},
            });
            // Every third one discards its output, every fifth runs elsewhere.
            if i % 3 == 1 {
                daemon["output"] = json!("discard");
            }
            if i % 5 == 2 {
                daemon["working_dir"] = json!(d.s("wd"));
            }
            daemon
        })
        .collect();
    d.daemons_value(&json!(daemons));
    let mut r = pz.spawn();
    let all = wait_until(secs(60.0), || {
        (0..DAEMONS).all(|i| d.exists(&format!("out/d{i}")))
    });
    assert!(
        all.is_some(),
        "not every daemon recorded itself\n{}",
        r.dump()
    );
    let cwd = std::env::current_dir().unwrap().display().to_string();
    for i in 0..DAEMONS {
        let text = d.read(&format!("out/d{i}"));
        let fields: BTreeMap<&str, &str> = text
            .trim_end()
            .split('|')
            .filter_map(|f| f.split_once('='))
            .collect();
        let dir = if i % 5 == 2 { d.s("wd") } else { cwd.clone() };
        assert!(
            text.starts_with(&format!("arg {i}||ü|pgid=")),
            "d{i}: argv {text}"
        );
        assert_eq!(fields["D"], format!("value-{i}"), "d{i}: {text}");
        assert_eq!(fields["WEIRD"], "x=y z", "d{i}: {text}");
        assert_eq!(fields["pgid"], fields["pid"], "d{i}: own group {text}");
        assert_eq!(
            fields["pwd"].trim_end_matches('/'),
            dir.trim_end_matches('/'),
            "d{i}: {text}"
        );
    }
    // The pipes of each logging daemon carry its own lines and nobody else's.
    for i in (0..DAEMONS).filter(|i| i % 3 != 1) {
        let name = format!("d{i}");
        r.wait_line(&name, &format!("hello from {name}"));
    }
    let lines: Vec<_> = r
        .records()
        .into_iter()
        .filter(|rec| rec["stream"] == "stdout")
        .collect();
    assert_eq!(lines.len(), DAEMONS - DAEMONS.div_ceil(3), "{}", r.dump());
    for rec in &lines {
        let source = rec["source"].as_str().unwrap_or("");
        assert_eq!(rec["line"], format!("hello from {source}"), "{rec}");
    }
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
}

#[test]
fn a_failed_exec_among_good_daemons_is_reaped_by_the_spawn_not_counted_as_an_orphan() {
    let d = Dir::new("spawn-fail");
    let sock = d.s("api.sock");
    let Some(pz) = pz()
        .config_dir(&d)
        .env("PIDZERO_SOCKET", &sock)
        .ns("spawn_fail")
    else {
        return;
    };
    // Passes the preflight (an executable file), but the exec fails: its
    // interpreter does not exist.
    let bad = d.write("bad", "#!/nonexistent/interpreter\n");
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut daemons = vec![json!({"name": "bad", "command": [&bad]})];
    daemons.extend((0..20).map(|i| json!({"name": format!("good{i}"), "command": "sleep 1000"})));
    // Exits at once: once its exit is seen, pidzero has reaped what had
    // ended before it, the failed child included (if the spawn had left it).
    daemons.push(json!({"name": "last", "command": "true"}));
    d.daemons_value(&json!(daemons));
    let mut r = pz.spawn();
    let failed = r.wait_event("spawn_failed", Some("bad"));
    assert_eq!(failed["status"], 127, "{failed}");
    assert_eq!(
        failed["error"], "No such file or directory (os error 2)",
        "{failed}"
    );
    for i in 0..20 {
        r.wait_event("started", Some(&format!("good{i}")));
    }
    r.wait_event("exited", Some("last"));
    let target = Target::unix(&sock);
    let mut metrics = None;
    wait_until(DEADLINE, || {
        metrics = try_http(&target, "GET", "/metrics", &[], "")
            .ok()
            .filter(|answer| answer.status == 200)
            .map(|answer| parse_metrics(&answer.body));
        metrics.is_some()
    })
    .unwrap_or_else(|| panic!("no /metrics\n{}", r.dump()));
    let metrics = metrics.unwrap();
    assert_eq!(
        metrics.value("pidzero_reaped_total"),
        Some(0.0),
        "the failed child was left to the orphan reaper\n{}",
        r.dump()
    );
    assert!(
        zombie_children(r.pid).is_empty(),
        "zombies: {:?}",
        zombie_children(r.pid)
    );
    r.assert_running();
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
}
