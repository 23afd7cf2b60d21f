//! Every route of SPEC §8 with its status codes, over the Unix socket, against a fake
//! runtime.

mod api_support;
mod common;

use api_support::*;
use pidzero::api::{self, ControlCommand};
use serde_json::json;

async fn server(tag: &str) -> (Dir, FakeRuntime, api::ApiServer, std::path::PathBuf) {
    let dir = Dir::new(tag);
    let socket = dir.p("api.sock");
    let (fake, ctx) = FakeRuntime::start(None);
    let server = api::start(Some(socket.clone()), None, ctx).await.unwrap();
    (dir, fake, server, socket)
}

#[tokio::test]
async fn health_follows_the_snapshot() {
    within(async {
        let (_dir, fake, _server, socket) = server("health").await;
        let a = unix(&socket, "GET", "/health", "").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json(), json!({"status": "healthy"}));
        assert_eq!(a.header("content-type"), Some("application/json"));

        fake.snapshot
            .send_modify(|s| s.daemons[0].health = Some("unhealthy".into()));
        let a = unix(&socket, "GET", "/health", "").await;
        assert_eq!(a.status, 503);
        assert_eq!(a.json(), json!({"status": "unhealthy", "failing": ["web"]}));

        fake.snapshot.send_modify(|s| {
            s.daemons[0].health = Some("healthy".into());
            s.shutting_down = true;
        });
        let a = unix(&socket, "GET", "/health", "").await;
        assert_eq!(a.status, 503);
        assert_eq!(a.json()["shutting_down"], json!(true));
    })
    .await;
}

#[tokio::test]
async fn daemons_and_one_daemon() {
    within(async {
        let (_dir, _fake, _server, socket) = server("daemons").await;
        let a = unix(&socket, "GET", "/daemons", "").await;
        assert_eq!(a.status, 200);
        let mut list = a.json();
        assert_eq!(list.as_array().unwrap().len(), 2);
        // The uptime is brought up to date from started_at at each answer.
        let uptime = list[0]["uptime_seconds"].take().as_f64().unwrap();
        assert!((61.5..70.0).contains(&uptime), "{uptime}");
        let started_at = list[0]["started_at"].take();
        assert!(humantime::parse_rfc3339(started_at.as_str().unwrap()).is_ok());
        assert_eq!(
            list[0],
            json!({
                "name": "web", "vital": true, "state": "running", "pid": 4242,
                "started_at": null, "uptime_seconds": null,
                "restarts": 2, "health": "healthy",
                "ready": false, "ready_mode": "", "ready_state": null,
                "ready_after_ms": null, "status_text": null,
                "last_exit": {"code": 1, "at": "2026-11-28T14:08:00.000Z"},
                "command": ["/usr/bin/web", "--port", "8080"]
            })
        );
        assert!(!a.body.contains("environment"));

        let a = unix(&socket, "GET", "/daemons/worker", "").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json()["state"], json!("exited"));
        assert_eq!(a.json()["pid"], json!(null));

        let a = unix(&socket, "GET", "/daemons/nope", "").await;
        assert_eq!(a.status, 404);
        assert!(a.json()["error"].as_str().unwrap().contains("nope"));
    })
    .await;
}

#[tokio::test]
async fn start_stop_restart() {
    within(async {
        let (_dir, fake, _server, socket) = server("actions").await;
        let a = unix(&socket, "POST", "/daemons/web/stop", "").await;
        assert_eq!((a.status, a.json()), (202, json!({"state": "stopping"})));
        let a = unix(&socket, "POST", "/daemons/worker/start", "").await;
        assert_eq!((a.status, a.json()), (202, json!({"state": "starting"})));
        let a = unix(&socket, "POST", "/daemons/worker/restart", "").await;
        assert_eq!(a.status, 202);
        // The snapshot the runtime published is what the next read sees.
        let a = unix(&socket, "GET", "/daemons/web", "").await;
        assert_eq!(a.json()["state"], json!("stopping"));

        fake.snapshot
            .send_modify(|s| s.daemons[0].state = "exited".into());
        let a = unix(&socket, "POST", "/daemons/web/start", "").await;
        assert_eq!(a.status, 202);
        let a = unix(&socket, "POST", "/daemons/web/start", "").await;
        assert_eq!(a.status, 409);
        assert_eq!(a.json(), json!({"error": "web is already running"}));

        let a = unix(&socket, "POST", "/daemons/ghost/stop", "").await;
        assert_eq!(a.status, 404);
        assert_eq!(
            fake.commands(),
            [
                ControlCommand::Stop("web".into()),
                ControlCommand::Start("worker".into()),
                ControlCommand::Restart("worker".into()),
                ControlCommand::Start("web".into()),
                ControlCommand::Start("web".into()),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn signal() {
    within(async {
        let (_dir, fake, _server, socket) = server("signal").await;
        let a = unix(
            &socket,
            "POST",
            "/daemons/web/signal",
            r#"{"signal":"HUP"}"#,
        )
        .await;
        assert_eq!(a.status, 202, "{a:?}");
        let a = unix(
            &socket,
            "POST",
            "/daemons/web/signal",
            r#"{"signal":"SIGUSR2"}"#,
        )
        .await;
        assert_eq!(a.status, 202);
        for bad in [
            r#"{"signal":"HUPP"}"#,
            r#"{"signal":"#,
            "",
            r#"{"sig":"HUP"}"#,
        ] {
            let a = unix(&socket, "POST", "/daemons/web/signal", bad).await;
            assert_eq!(a.status, 400, "{bad}: {a:?}");
            assert!(a.json()["error"].is_string());
        }
        let a = unix(
            &socket,
            "POST",
            "/daemons/ghost/signal",
            r#"{"signal":"HUP"}"#,
        )
        .await;
        assert_eq!(a.status, 404);
        let a = unix(
            &socket,
            "POST",
            "/daemons/worker/signal",
            r#"{"signal":"HUP"}"#,
        )
        .await;
        assert_eq!(a.status, 409);
        assert_eq!(
            fake.commands(),
            [
                ControlCommand::Signal("web".into(), libc::SIGHUP),
                ControlCommand::Signal("web".into(), libc::SIGUSR2),
                ControlCommand::Signal("worker".into(), libc::SIGHUP),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn logs() {
    within(async {
        let (_dir, _fake, _server, socket) = server("logs").await;
        let a = unix(&socket, "GET", "/daemons/web/logs", "").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json().as_array().unwrap().len(), 5);
        let a = unix(&socket, "GET", "/daemons/web/logs?lines=2", "").await;
        let records = a.json();
        assert_eq!(records.as_array().unwrap().len(), 2);
        assert_eq!(records[0]["line"], json!("line 4"));
        assert_eq!(records[1]["line"], json!("line 5"));
        let a = unix(&socket, "GET", "/daemons/worker/logs?lines=1000", "").await;
        assert_eq!((a.status, a.json()), (200, json!([])));
        for bad in ["lines=x", "lines=-1", "lines="] {
            let a = unix(&socket, "GET", &format!("/daemons/web/logs?{bad}"), "").await;
            assert_eq!(a.status, 400, "{bad}");
        }
        let a = unix(&socket, "GET", "/daemons/ghost/logs", "").await;
        assert_eq!(a.status, 404);
    })
    .await;
}

#[tokio::test]
async fn shutdown_version_metrics() {
    within(async {
        let (_dir, fake, _server, socket) = server("misc").await;
        let a = unix(&socket, "GET", "/version", "").await;
        assert_eq!(
            (a.status, a.json()),
            (200, json!({"version": env!("CARGO_PKG_VERSION")}))
        );
        let a = unix(&socket, "GET", "/metrics", "").await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert!(a.body.contains("pidzero_reaped_total 3\n"));

        let a = unix(&socket, "POST", "/shutdown", "").await;
        assert_eq!((a.status, a.json()), (202, json!({"state": "stopping"})));
        assert_eq!(fake.commands(), [ControlCommand::Shutdown]);
        assert_eq!(unix(&socket, "GET", "/health", "").await.status, 503);
    })
    .await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods() {
    within(async {
        let (_dir, fake, _server, socket) = server("routes").await;
        for path in ["/", "/nope", "/daemons/", "/daemons/web/kill", "/health/x"] {
            assert_eq!(unix(&socket, "GET", path, "").await.status, 404, "{path}");
        }
        for (method, path, allow) in [
            ("POST", "/health", "GET"),
            ("DELETE", "/daemons", "GET"),
            ("PUT", "/daemons/web", "GET"),
            ("GET", "/daemons/web/stop", "POST"),
            ("GET", "/shutdown", "POST"),
            ("POST", "/metrics", "GET"),
            ("HEAD", "/version", "GET"),
        ] {
            let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
            let a = exchange(stream, &request(method, path, &[], "")).await;
            assert_eq!(a.status, 405, "{method} {path}");
            assert_eq!(a.header("allow"), Some(allow), "{method} {path}");
        }
        assert!(fake.commands().is_empty());
    })
    .await;
}

#[tokio::test]
async fn malformed_requests_get_400() {
    within(async {
        let (_dir, _fake, _server, socket) = server("malformed").await;
        for junk in [
            &b"NOT HTTP AT ALL\r\n\r\n"[..],
            b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET /health HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        ] {
            let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
            let a = exchange(stream, junk).await;
            assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(junk));
        }
    })
    .await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    within(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (_dir, _fake, _server, socket) = server("keepalive").await;
        let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let one = b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
        stream.write_all(one).await.unwrap();
        stream.write_all(one).await.unwrap();
        stream
            .write_all(&request("GET", "/health", &[], ""))
            .await
            .unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    })
    .await;
}
