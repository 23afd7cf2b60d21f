//! Only signals sent from outside are forwarded: a SIGPIPE that pidzero raises
//! on itself, writing to a control-socket client that left, never reaches the
//! daemons, while a signal sent from outside still does.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use common::*;
use serde_json::json;

/// Traps PIPE, USR1 and TERM and says so; writes enough records to make
/// `logs?lines=1000` a few hundred KB, more than a socket buffer holds.
const DAEMON: &str = r#"trap 'echo got-PIPE' PIPE
trap 'echo got-USR1' USR1
trap 'echo got-TERM; exit 0' TERM
pad=$(printf '%0400d' 0)
i=0
while [ $i -lt 1000 ]; do echo "record $i $pad"; i=$((i+1)); done
echo ready
while :; do sleep 1000 & wait $!; done"#;

/// The number of sockets pidzero has open.
fn open_sockets(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Asks for the big answer, reads 100 bytes of it and leaves.
fn impatient_client(socket: &str) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .write_all(b"GET /daemons/web/logs?lines=1000 HTTP/1.1\r\nHost: pidzero\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 100];
    stream.read_exact(&mut first).unwrap();
}

#[test]
fn clients_that_leave_early_cause_no_forwarded_sigpipe() {
    let dir = Dir::new("self-signals");
    dir.daemons_value(&json!([
        {"name": "web", "vital": true, "command": ["/bin/sh", "-c", DAEMON]},
    ]));
    let socket = unique_socket_path();
    let Some(pz) = pz()
        .config_dir(&dir)
        .env("PIDZERO_SOCKET", &socket)
        .ns("self_signals")
    else {
        return;
    };
    let mut r = pz.spawn();
    r.wait_line("web", "ready");
    let idle_sockets = open_sockets(r.pid);

    for _ in 0..20 {
        impatient_client(&socket);
    }
    // Every connection is over once pidzero has closed its end: any SIGPIPE
    // it raised on itself has been raised by then.
    let closed = wait_until(DEADLINE, || open_sockets(r.pid) <= idle_sockets);
    assert!(closed.is_some(), "connections still open\n{}", r.dump());
    r.assert_running();

    // A signal from outside the namespace is still forwarded.
    r.signal(libc::SIGUSR1);
    r.wait_line("web", "got-USR1");
    r.assert_running();

    r.signal(libc::SIGTERM);
    let done = r.finish();
    assert_eq!(done.status(), 0, "{}", done.dump());
    assert!(
        done.find(|rec| is_line(rec, "web", "got-TERM")).is_some(),
        "{}",
        done.dump()
    );
    // The daemon runs its traps in signal-number order, PIPE before TERM:
    // a forwarded SIGPIPE would show by now.
    let forwarded_pipe = done.find(|rec| {
        is_line(rec, "web", "got-PIPE")
            || (is_event(rec, "signal_forwarded", None) && rec["signal"] == "SIGPIPE")
    });
    assert!(
        forwarded_pipe.is_none(),
        "pidzero forwarded a SIGPIPE it raised on itself: {forwarded_pipe:?}\n{}",
        done.dump()
    );
}
