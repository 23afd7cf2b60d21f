//! Black-box tests of a `log.forward` handler beside the file sink: in
//! the file's format, what the receiver gets must be byte for byte the
//! file's lines, in every format, with `parse: json` objects and text that
//! needs escaping (what would let the handler take the writer's formatted
//! bytes instead of formatting again, and what a receiver may rely on
//! whoever formats); in another format, the same records in its own.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::thread;

use common::*;
use serde_json::Value;

const LINES: usize = 3000;

/// A daemon writing, per round, a plain line with what formats escape and
/// a JSON object (carried as an object with `parse: json`) whose strings
/// hold escaped newlines.
fn daemon(dir: &Dir) {
    dir.daemons(&format!(
        r#"[{{"name":"gen","parse":"json","command":["/bin/sh","-c","i=0; while [ $i -lt {LINES} ]; do printf 'plain %d \"q\" \\\\ tab\\there \\303\\251 = x\\n{{\"k\":\"v\\\\nw\",\"n\":%d}}\\n' $i $i; i=$((i+1)); done"]}}]"#
    ));
}

/// Runs the daemon with the file in `file_format` and a forward handler in
/// `forward_format`; returns the daemon's records as the file and the
/// receiver have them (pidzero's own events left out).
fn run(name: &str, file_format: &str, forward_format: &str) -> (Vec<String>, Vec<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).unwrap();
        all
    });
    let dir = Dir::new(name);
    daemon(&dir);
    let file = dir.p("pidzero.log");
    dir.config(&format!(
        r#"{{"log":{{"format":"{file_format}","log_to_stdout":false,"log_to_file":true,"file_path":"{}","max_file_size":0,"forward":{{"address":"tcp://127.0.0.1:{port}","format":"{forward_format}","buffer_records":1000000,"buffer_bytes":268435456}}}}}}"#,
        file.display()
    ));
    let finished = pz().config_dir(&dir).run(secs(60.0));
    assert_eq!(finished.status(), 0, "{}", finished.stderr);
    assert!(!finished.stderr.contains("lost"), "{}", finished.stderr);
    let received = String::from_utf8(server.join().unwrap()).unwrap();
    let written = std::fs::read_to_string(&file).unwrap();
    (daemon_lines(&written), daemon_lines(&received))
}

/// The lines of `text` that are the daemon's records (not pidzero's own
/// events), whatever the format.
fn daemon_lines(text: &str) -> Vec<String> {
    assert!(text.is_empty() || text.ends_with('\n'), "{text}");
    text.lines()
        .filter(|l| l.contains("gen"))
        .filter(|l| {
            !l.contains(r#""source":"pidzero""#)
                && !l.contains("source=pidzero")
                && !l.contains("source => pidzero")
                && !l.contains(" pidzero event: ")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_receiver_gets_the_files_bytes_when_the_formats_are_the_same() {
    for format in ["json", "logfmt", "text", "map"] {
        let (file, forwarded) = run(&format!("fwd-same-{format}"), format, format);
        assert_eq!(file.len(), 2 * LINES, "{format}: {:?}", file.first());
        assert!(
            file == forwarded,
            "{format}: {} forwarded lines differ from the file's {}: first {:?} / {:?}",
            forwarded.len(),
            file.len(),
            forwarded.iter().zip(&file).find(|(a, b)| a != b),
            forwarded.first(),
        );
    }
    // The JSON records are what the daemon wrote: objects as objects.
    let (file, _) = run("fwd-same-json-check", "json", "json");
    let first: Value = serde_json::from_str(&file[0]).unwrap();
    assert_eq!(first["line"], "plain 0 \"q\" \\ tab\there é = x");
    let object: Value = serde_json::from_str(&file[1]).unwrap();
    assert_eq!(object["fields"]["k"], "v\nw", "{object}");
}

#[test]
fn the_receiver_gets_its_own_format_when_the_formats_differ() {
    let (file, forwarded) = run("fwd-differ", "text", "json");
    assert_eq!(file.len(), 2 * LINES);
    assert_eq!(forwarded.len(), 2 * LINES);
    assert!(
        file[0].ends_with(" gen stdout: plain 0 \"q\" \\ tab\there é = x"),
        "{}",
        file[0]
    );
    for (i, pair) in forwarded.chunks(2).enumerate() {
        let plain: Value = serde_json::from_str(&pair[0]).unwrap();
        assert_eq!(plain["source"], "gen");
        assert_eq!(plain["line"], format!("plain {i} \"q\" \\ tab\there é = x"));
        let object: Value = serde_json::from_str(&pair[1]).unwrap();
        assert_eq!(object["fields"]["n"], i, "{object}");
        assert_eq!(object["fields"]["k"], "v\nw", "{object}");
    }
}
