//! Black-box tests of the network log handlers with the real binary:
//!
//! - `log.forward` to a TCP listener of the test: every record arrives,
//!   newline-delimited JSON, in order, none lost while connected;
//! - the receiver away, then back: the daemon is never slowed and stdout
//!   gets every line, the forward queue drops its oldest records (counted
//!   in `/metrics`), one `sink_error` when the outage starts and one
//!   `sink_recovered` with the number dropped when it ends;
//! - a receiver that accepts and never reads: drops, not a block;
//! - `log.syslog` over UDP and TCP to a real rsyslogd started by the test,
//!   which parses PRI, APP-NAME, MSGID and MSG (skipped loudly without it).

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use common::http::{get, Target};
use common::metrics::parse_metrics;
use common::*;
use serde_json::Value;

/// What a test's receiver got, shared with its reading thread.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<u8>>>);

impl Received {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn records(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }
}

/// Accepts one connection on `listener` and reads it to its end into
/// `received` (one connection per pidzero run in these tests); returns how
/// many connections it got (0 if accepting failed).
fn serve(listener: TcpListener, received: Received) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return 0;
        };
        let mut buffer = [0u8; 65536];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.0.lock().unwrap().extend_from_slice(&buffer[..n]),
            }
        }
        1
    })
}

/// A port nobody listens on (just freed).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metric(socket: &str, key: &str) -> Option<f64> {
    let answer = get(&Target::unix(socket), "/metrics");
    parse_metrics(&answer.body).value(key)
}

/// The stdout lines of `source` (stderr is another pipe: its lines may come
/// in between).
fn lines_of<'a>(records: &'a [Value], source: &str) -> Vec<&'a str> {
    records
        .iter()
        .filter(|r| r["source"] == source && r["stream"] == "stdout")
        .filter_map(|r| r["line"].as_str())
        .collect()
}

#[test]
fn forward_sends_every_record_in_order_as_json_lines() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Received::default();
    let server = serve(listener, received.clone());
    let dir = Dir::new("net-forward");
    let n = 20_000;
    dir.daemons(&format!(
        r#"[{{"name":"gen","command":["/bin/sh","-c","seq -f 'line %g' 1 {n}; echo oops >&2"]}}]"#
    ));
    dir.config(&format!(
        r#"{{"log":{{"forward":{{"address":"tcp://127.0.0.1:{port}"}}}}}}"#
    ));
    let finished = pz().config_dir(&dir).run(secs(30.0));
    assert_eq!(finished.status(), 0, "{}", finished.stderr);
    // pidzero closes the connection at exit, which ends the server.
    assert_eq!(server.join().unwrap(), 1);
    let text = received.text();
    assert!(text.ends_with('\n'), "{text}");
    let records = received.records();
    let want: Vec<String> = (1..=n).map(|i| format!("line {i}")).collect();
    let forwarded = lines_of(&records, "gen");
    assert!(
        forwarded == want,
        "{} lines forwarded, not as sent",
        forwarded.len()
    );
    let oops = records.iter().find(|r| r["line"] == "oops").unwrap();
    assert_eq!(oops["stream"], "stderr");
    for event in ["starting", "started", "exited"] {
        assert!(
            records.iter().any(|r| r["event"] == event),
            "no {event} in {text}"
        );
    }
    // The same records as stdout, in the same order.
    assert_eq!(
        lines_of(&finished.records, "gen"),
        lines_of(&records, "gen")
    );
    assert!(!finished.stderr.contains("lost"), "{}", finished.stderr);
}

/// The forward handler alone (no stdout, no file) still gets daemon lines.
#[test]
fn forward_in_logfmt_over_a_unix_socket() {
    let dir = Dir::new("net-forward-unix");
    let socket = dir.p("vector.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let received = Received::default();
    let got = received.clone();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).unwrap();
        got.0.lock().unwrap().extend_from_slice(&all);
    });
    dir.daemons(r#"[{"name":"web","command":["/bin/echo","GET / 200"]}]"#);
    dir.config(&format!(
        r#"{{"log":{{"log_to_stdout":false,"forward":{{"address":"unix://{}","format":"logfmt"}}}}}}"#,
        socket.display()
    ));
    let finished = pz().config_dir(&dir).run(secs(20.0));
    assert_eq!(finished.status(), 0, "{}", finished.stderr);
    server.join().unwrap();
    let text = received.text();
    assert!(
        text.lines()
            .any(|l| l.ends_with(" source=web stream=stdout line=\"GET / 200\"")),
        "{text}"
    );
}

/// The receiver is away while a daemon writes a burst: the daemon is not
/// slowed, stdout gets every line, the forward handler drops its oldest
/// records and says so once; when the receiver is back, the newest records
/// and what follows arrive, with one `sink_recovered` event.
#[test]
fn receiver_away_then_back() {
    let port = free_port();
    let dir = Dir::new("net-away");
    let n = 20_000;
    let go = dir.p("go");
    dir.daemons(&format!(
        r#"[{{"name":"burst","command":["/bin/sh","-c","seq -f 'burst %g' 1 {n}; while [ ! -e {go} ]; do sleep 0.05; done; echo after; exec sleep 1000"]}}]"#,
        go = go.display()
    ));
    dir.config(&format!(
        r#"{{"log":{{"forward":{{"address":"tcp://127.0.0.1:{port}","buffer_records":100}}}}}}"#
    ));
    let socket = unique_socket_path();
    let started = Instant::now();
    let mut r = pz().config_dir(&dir).env("PIDZERO_SOCKET", &socket).spawn();
    r.wait_record("the last burst line", secs(20.0), |v| {
        is_line(v, "burst", &format!("burst {n}"))
    });
    let burst_time = started.elapsed();
    let outage = r.wait_record("forward's sink_error", DEADLINE, |v| {
        is_event(v, "sink_error", None) && v["sink"] == "forward"
    });
    assert_eq!(outage["level"], "warn", "{outage}");
    assert!(
        outage["error"].as_str().unwrap().contains("refused"),
        "{outage}"
    );
    let dropped_key = r#"pidzero_log_dropped_total{sink="forward"}"#;
    let dropped = wait_until(DEADLINE, || {
        metric(&socket, dropped_key).is_some_and(|d| d >= (n - 100) as f64)
    });
    assert!(dropped.is_some(), "{:?}", metric(&socket, dropped_key));
    assert_eq!(
        metric(&socket, r#"pidzero_log_queued_records{sink="forward"}"#),
        Some(100.0)
    );
    // Back: a listener on the port, then one more line.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let received = Received::default();
    let server = serve(listener, received.clone());
    std::fs::write(&go, "").unwrap();
    let back = r.wait_record("forward's sink_recovered", secs(20.0), |v| {
        is_event(v, "sink_recovered", None) && v["sink"] == "forward"
    });
    let lost = back["dropped"].as_u64().unwrap();
    assert!(lost >= (n - 100) as u64 && lost <= n as u64, "{back}");
    assert!(
        wait_until(DEADLINE, || received.text().contains("\"line\":\"after\"")).is_some(),
        "{}",
        received.text()
    );
    r.signal(libc::SIGTERM);
    r.wait_exit(DEADLINE);
    let finished = r.finish();
    assert!(server.join().unwrap() == 1);
    // stdout lost nothing, and the burst was not held up by the network.
    let burst = lines_of(&finished.records, "burst");
    assert_eq!(burst.len(), n + 1);
    assert_eq!(burst[n - 1], format!("burst {n}"));
    assert!(burst_time < secs(15.0), "{burst_time:?}");
    let count = |event: &str| {
        finished
            .records
            .iter()
            .filter(|v| is_event(v, event, None) && v["sink"] == "forward")
            .count()
    };
    assert_eq!((count("sink_error"), count("sink_recovered")), (1, 1));
    // What arrived: the newest burst lines kept in the queue, in order,
    // then the rest.
    let records = received.records();
    let forwarded = lines_of(&records, "burst");
    let last_burst = format!("burst {n}");
    assert!(forwarded.contains(&last_burst.as_str()), "{forwarded:?}");
    assert!(forwarded.len() <= 101, "{}", forwarded.len());
    assert_eq!(forwarded.last(), Some(&"after"));
}

/// A receiver that accepts and never reads: its socket buffer fills, then
/// the handler drops (and says so), while the daemon and stdout go on.
#[test]
fn a_receiver_that_never_reads_costs_drops_not_a_block() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
    });
    let dir = Dir::new("net-stuck");
    let n = 200_000;
    // 200,000 records of about 190 bytes as JSON: far more than socket buffers hold.
    dir.daemons(&format!(
        r#"[{{"name":"flood","command":["/bin/sh","-c","seq -f 'flood %g xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' 1 {n}; exec sleep 1000"]}}]"#
    ));
    dir.config(&format!(
        r#"{{"log":{{"forward":{{"address":"tcp://127.0.0.1:{port}","buffer_records":1000}}}}}}"#
    ));
    let socket = unique_socket_path();
    let r = pz().config_dir(&dir).env("PIDZERO_SOCKET", &socket).spawn();
    let last = format!("flood {n} {}", "x".repeat(80));
    r.wait_record("the last flood line", secs(60.0), |v| {
        is_line(v, "flood", &last)
    });
    let stuck = r.wait_record("forward's sink_error", DEADLINE, |v| {
        is_event(v, "sink_error", None) && v["sink"] == "forward"
    });
    assert!(
        stuck["error"].as_str().unwrap().contains("faster than"),
        "{stuck}"
    );
    let dropped = metric(&socket, r#"pidzero_log_dropped_total{sink="forward"}"#).unwrap();
    assert!(dropped > 0.0);
    let _stream: TcpStream = holder.join().unwrap();
    let mut r = r;
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 0);
    let finished = r.finish();
    assert_eq!(lines_of(&finished.records, "flood").len(), n);
}

/// A burst far past a small queue, to a receiver that reads: the handler
/// drops, catches up, drops again... and that is one outage, reported by one
/// `sink_error` and one `sink_recovered`, not an event per flap.
#[test]
fn a_burst_past_the_queue_is_one_outage() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Received::default();
    let server = serve(listener, received.clone());
    let dir = Dir::new("net-burst");
    let n = 300_000;
    dir.daemons(&format!(
        r#"[{{"name":"burst","command":["/bin/sh","-c","seq -f 'burst %g' 1 {n}; exec sleep 1000"]}}]"#
    ));
    dir.config(&format!(
        r#"{{"log":{{"forward":{{"address":"tcp://127.0.0.1:{port}","buffer_records":10}}}}}}"#
    ));
    let mut r = pz().config_dir(&dir).spawn();
    r.wait_record("the last burst line", secs(30.0), |v| {
        is_line(v, "burst", &format!("burst {n}"))
    });
    let back = r.wait_record("forward's sink_recovered", secs(20.0), |v| {
        is_event(v, "sink_recovered", None) && v["sink"] == "forward"
    });
    assert!(back["dropped"].as_u64().unwrap() > 0, "{back}");
    r.signal(libc::SIGTERM);
    r.wait_exit(DEADLINE);
    let finished = r.finish();
    server.join().unwrap();
    let count = |event: &str| {
        finished
            .records
            .iter()
            .filter(|v| is_event(v, event, None) && v["sink"] == "forward")
            .count()
    };
    assert_eq!((count("sink_error"), count("sink_recovered")), (1, 1));
    assert_eq!(lines_of(&finished.records, "burst").len(), n);
}

// ---------------------------------------------------------------------------
// syslog to a real rsyslogd
// ---------------------------------------------------------------------------

/// rsyslogd in the foreground, listening on UDP and TCP on loopback and on a
/// Unix datagram socket `log.sock` as it does on `/dev/log`, writing
/// what it parsed, one message a line, to `out.log`; killed on drop.
struct Rsyslog {
    child: Child,
    udp: u16,
    tcp: u16,
    out: std::path::PathBuf,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rsyslogd() -> Option<&'static str> {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

fn start_rsyslog(dir: &Dir, test: &str) -> Option<Rsyslog> {
    let Some(program) = rsyslogd() else {
        eprintln!("\n*** SKIP {test}: rsyslogd is not installed (apt-get install rsyslog) ***\n");
        return None;
    };
    let udp = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let tcp = free_port();
    let out = dir.p("out.log");
    let conf = dir.write(
        "rsyslog.conf",
        &format!(
            r#"global(workDirectory="{work}")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{devlog}")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
template(name="parsed" type="string" string="%pri%|%syslogfacility-text%|%syslogseverity-text%|%hostname%|%app-name%|%procid%|%msgid%|%inputname%|%msg%\n")
action(type="omfile" file="{out}" template="parsed")
"#,
            work = dir.path.display(),
            out = out.display(),
            devlog = dir.p("log.sock").display(),
        ),
    );
    let child = Command::new(program)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.p("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rsyslogd");
    let up = wait_until(DEADLINE, || TcpStream::connect(("127.0.0.1", tcp)).is_ok());
    assert!(up.is_some(), "rsyslogd does not listen on {tcp}");
    let rsyslog = Rsyslog {
        child,
        udp,
        tcp,
        out,
    };
    // imudp may start after imtcp: probe until a datagram gets through.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ready = wait_until(DEADLINE, || {
        let _ = probe.send_to(b"<14>1 - - probe - - - ready", ("127.0.0.1", udp));
        parsed(&rsyslog)
            .iter()
            .any(|f| f.get(8).is_some_and(|m| m == "ready"))
    });
    assert!(ready.is_some(), "rsyslogd does not take datagrams on {udp}");
    Some(rsyslog)
}

/// The fields rsyslogd parsed out of each message it got.
fn parsed(rsyslog: &Rsyslog) -> Vec<Vec<String>> {
    std::fs::read_to_string(&rsyslog.out)
        .unwrap_or_default()
        .lines()
        .map(|l| l.splitn(9, '|').map(str::to_string).collect())
        .collect()
}

fn run_with_syslog(dir: &Dir, syslog: &str) {
    dir.daemons(
        r#"[{"name":"web","command":["/bin/sh","-c","echo 'GET / 200'; echo 'ERROR: disk full' >&2; echo 'slow query' >&2"]}]"#,
    );
    dir.config(&format!(r#"{{"log":{{"syslog":{syslog}}}}}"#));
    let finished = pz().config_dir(dir).run(secs(20.0));
    assert_eq!(finished.status(), 0, "{}", finished.stderr);
}

/// The message `msg` that came through `input` (`imudp`, `imtcp`,
/// `imuxsock`); rsyslog keeps the space after an RFC 3164 tag's colon.
fn wait_parsed(rsyslog: &Rsyslog, msg: &str, input: &str) -> Vec<String> {
    let mut found = None;
    wait_until(DEADLINE, || {
        found = parsed(rsyslog)
            .into_iter()
            .find(|f| f.len() == 9 && f[8].trim_start() == msg && f[7] == input);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("rsyslogd has no {msg:?}: {:?}", parsed(rsyslog)))
}

#[test]
fn syslog_rfc5424_over_udp_and_tcp_parses_in_rsyslog() {
    let dir = Dir::new("net-rsyslog");
    let Some(rsyslog) = start_rsyslog(&dir, "syslog_rfc5424_over_udp_and_tcp_parses_in_rsyslog")
    else {
        return;
    };
    for (transport, port, input) in [("udp", rsyslog.udp, "imudp"), ("tcp", rsyslog.tcp, "imtcp")] {
        let run = Dir::new("net-rsyslog-run");
        run_with_syslog(
            &run,
            &format!(r#"{{"address":"{transport}://127.0.0.1:{port}","facility":"local3"}}"#),
        );
        let get = wait_parsed(&rsyslog, "GET / 200", input);
        // PRI 158 = local3 (19) * 8 + info (6).
        assert_eq!(get[..3], ["158", "local3", "info"], "{get:?}");
        assert_eq!(get[4], "web", "APP-NAME: {get:?}");
        assert_eq!(get[6], "web", "MSGID: {get:?}");
        assert_eq!(get[7], input, "{get:?}");
        assert!(get[5].parse::<u32>().is_ok(), "PROCID: {get:?}");
        let error = wait_parsed(&rsyslog, "ERROR: disk full", input);
        assert_eq!(error[..3], ["155", "local3", "err"], "{error:?}");
        let slow = wait_parsed(&rsyslog, "slow query", input);
        assert_eq!(slow[..3], ["156", "local3", "warning"], "{slow:?}");
        let started = parsed(&rsyslog)
            .into_iter()
            .find(|f| {
                f.len() == 9
                    && f[7] == input
                    && f[4] == "pidzero"
                    && f[8].starts_with("started web")
            })
            .unwrap_or_else(|| panic!("no event: {:?}", parsed(&rsyslog)));
        assert_eq!(started[2], "info");
    }
}

#[test]
fn syslog_rfc3164_over_tcp_with_a_fixed_app_name() {
    let dir = Dir::new("net-rsyslog-3164");
    let Some(rsyslog) = start_rsyslog(&dir, "syslog_rfc3164_over_tcp_with_a_fixed_app_name") else {
        return;
    };
    run_with_syslog(
        &dir,
        &format!(
            r#"{{"address":"tcp://127.0.0.1:{}","protocol":"rfc3164","app_name":"shop","format":"json"}}"#,
            rsyslog.tcp
        ),
    );
    let all = || parsed(&rsyslog);
    let mut get = None;
    wait_until(DEADLINE, || {
        get = all()
            .into_iter()
            .find(|f| f.len() == 9 && f[8].contains("GET / 200"));
        get.is_some()
    });
    let get = get.unwrap_or_else(|| panic!("{:?}", all()));
    // daemon.info = 30; TAG = app_name; the message is the JSON record.
    assert_eq!(get[..3], ["30", "daemon", "info"], "{get:?}");
    assert_eq!(get[4], "shop", "{get:?}");
    let record: Value = serde_json::from_str(get[8].trim_start()).unwrap();
    assert_eq!(record["source"], "web");
    assert_eq!(record["line"], "GET / 200");
}

/// To a `/dev/log`-like socket, the default is what syslog(3) sends there:
/// RFC 3164 without a host name, which rsyslog's imuxsock parses.
#[test]
fn syslog_to_a_local_datagram_socket_parses_in_rsyslog() {
    let dir = Dir::new("net-rsyslog-devlog");
    let Some(rsyslog) = start_rsyslog(&dir, "syslog_to_a_local_datagram_socket_parses_in_rsyslog")
    else {
        return;
    };
    let run = Dir::new("net-rsyslog-devlog-run");
    run_with_syslog(
        &run,
        &format!(r#"{{"address":"unix://{}"}}"#, dir.p("log.sock").display()),
    );
    let get = wait_parsed(&rsyslog, "GET / 200", "imuxsock");
    assert_eq!(get[..3], ["30", "daemon", "info"], "{get:?}");
    assert_eq!(get[4], "web", "TAG: {get:?}");
    assert!(get[5].parse::<u32>().is_ok(), "PID: {get:?}");
    let error = wait_parsed(&rsyslog, "ERROR: disk full", "imuxsock");
    assert_eq!(error[..3], ["27", "daemon", "err"], "{error:?}");
}

#[test]
fn check_reports_bad_network_settings_with_their_place() {
    let dir = Dir::new("net-check");
    dir.daemons(r#"[{"name":"a","command":["/bin/true"]}]"#);
    dir.config(
        "{\"log\": {\n  \"forward\": {\"address\": \"udp://127.0.0.1:9000\"},\n  \"syslog\": {\"facility\": \"local9\", \"protocol\": \"rfc9999\"}}}",
    );
    let finished = pz().config_dir(&dir).arg("check").run(DEADLINE);
    assert_eq!(finished.status(), 2, "{}", finished.stderr);
    let stderr = &finished.stderr;
    for (line, field) in [
        (2, "log.forward.address"),
        (3, "log.syslog.facility"),
        (3, "log.syslog.protocol"),
    ] {
        let place = format!("config.json:{line}:");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&place) && l.contains(&format!(" field {field}: "))),
            "no {place}COL: field {field} in {stderr}"
        );
    }
    assert!(stderr.contains("unsupported scheme \"udp\""), "{stderr}");
}

/// Connected and with nothing to send, a handler's thread sleeps: not one
/// wake-up in a 2-second window (forward over TCP, syslog over UDP).
#[test]
fn idle_handlers_do_not_wake_up() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Received::default();
    let server = serve(listener, received.clone());
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let dir = Dir::new("net-idle");
    dir.daemons(r#"[{"name":"idle","command":["/bin/sh","-c","echo ready; exec sleep 1000"]}]"#);
    dir.config(&format!(
        r#"{{"log":{{"forward":{{"address":"tcp://127.0.0.1:{port}"}},"syslog":{{"address":"udp://127.0.0.1:{udp_port}"}}}}}}"#
    ));
    let mut r = pz().config_dir(&dir).spawn();
    r.wait_line("idle", "ready");
    let arrived = wait_until(DEADLINE, || received.text().contains("\"line\":\"ready\""));
    assert!(arrived.is_some(), "{}", received.text());
    let pid = r.pid;
    let before = (
        thread_wakeups(pid, "pidzero-forward").unwrap(),
        thread_wakeups(pid, "pidzero-syslog").unwrap(),
    );
    // A measurement window, not a synchronisation.
    thread::sleep(secs(2.0));
    let after = (
        thread_wakeups(pid, "pidzero-forward").unwrap(),
        thread_wakeups(pid, "pidzero-syslog").unwrap(),
    );
    assert_eq!(before, after, "(forward, syslog) context switches");
    r.signal(libc::SIGTERM);
    r.wait_exit(DEADLINE);
    drop(r.finish());
    assert_eq!(server.join().unwrap(), 1);
}
