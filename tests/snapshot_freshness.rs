//! The API's snapshot is rebuilt only when something it shows may have
//! changed: an orphan reaped while no daemon does anything still shows in
//! `/metrics` (the reap is such a change, though no supervisor event comes
//! with it).

mod common;

use common::http::{get, Target};
use common::metrics::parse_metrics;
use common::*;

#[test]
fn an_orphan_reaped_alone_shows_in_the_metrics() {
    let d = Dir::new("snapfresh");
    let socket = unique_socket_path();
    // The subshell leaves `sleep 0.5` behind and exits: an orphan pidzero
    // reaps half a second later, while the daemon itself goes on.
    d.daemons(
        r#"[{"name": "spawner", "command": ["/bin/sh", "-c", "(sleep 0.5 &); echo spawned; exec sleep 300"]}]"#,
    );
    let mut r = pz().config_dir(&d).env("PIDZERO_SOCKET", &socket).spawn();
    r.wait_line("spawner", "spawned");
    let target = Target::unix(&socket);
    let reaped = wait_until(DEADLINE, || {
        let answer = get(&target, "/metrics");
        answer.status == 200
            && parse_metrics(&answer.body)
                .value("pidzero_reaped_total")
                .is_some_and(|v| v >= 1.0)
    });
    assert!(
        reaped.is_some(),
        "pidzero_reaped_total never reached 1\n{}",
        r.dump()
    );
    r.assert_running();
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
}
