//! The client commands against the real server (fake runtime), in process, over a
//! temp socket and over TCP with a token: output and exit statuses.

mod api_support;
mod common;

use api_support::*;
use pidzero::api::{self, ControlCommand};
use pidzero::client::{self, exit, Command, Endpoint, Options};

async fn run(options: &Options, command: Command) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = client::execute(options, &command, &mut out, &mut err).await;
    (
        status,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[tokio::test]
async fn every_command_over_the_socket() {
    within(async {
        let dir = Dir::new("client");
        let socket = dir.p("api.sock");
        let (fake, ctx) = FakeRuntime::start(None);
        let _server = api::start(Some(socket.clone()), None, ctx).await.unwrap();
        let options = Options {
            endpoint: Endpoint::Unix(socket.clone()),
            token: None,
        };

        let (code, out, _) = run(&options, Command::Status { json: false }).await;
        assert_eq!(code, exit::OK);
        assert_eq!(
            out,
            "\
NAME    STATE    PID   UPTIME  RESTARTS  VITAL  HEALTH
web     running  4242  1m01s   2         yes    healthy
worker  exited   -     -       2         no     -
"
        );
        let (code, out, _) = run(&options, Command::Status { json: true }).await;
        assert_eq!(code, exit::OK);
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(list[1]["name"], "worker");

        let (code, out, _) = run(&options, Command::Health).await;
        assert_eq!((code, out.as_str()), (exit::OK, "healthy\n"));

        let (code, out, _) = run(&options, Command::Logs("web".into(), 2)).await;
        assert_eq!(code, exit::OK);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains(r#""line":"line 5""#), "{out}");

        let (code, out, _) = run(&options, Command::Stop("web".into())).await;
        assert_eq!((code, out.as_str()), (exit::OK, "web: stopping\n"));

        let (code, out, _) = run(&options, Command::Health).await;
        assert_eq!((code, out.as_str()), (exit::FAILED, "unhealthy: web\n"));

        let (code, out, err) = run(&options, Command::Stop("worker".into())).await;
        assert_eq!(code, exit::FAILED);
        assert_eq!(
            (out.as_str(), err.as_str()),
            ("", "pidzero: worker is not running\n")
        );

        let (code, _, err) = run(&options, Command::Start("ghost".into())).await;
        assert_eq!(code, exit::FAILED);
        assert_eq!(err, "pidzero: no daemon named \"ghost\"\n");

        let (code, out, _) = run(&options, Command::Start("worker".into())).await;
        assert_eq!((code, out.as_str()), (exit::OK, "worker: starting\n"));
        let (code, _, _) = run(&options, Command::Restart("worker".into())).await;
        assert_eq!(code, exit::OK);

        fake.snapshot
            .send_modify(|s| s.daemons[1].state = "running".into());
        let (code, out, _) = run(&options, Command::Signal("worker".into(), "USR1".into())).await;
        assert_eq!((code, out.as_str()), (exit::OK, "worker: sent USR1\n"));
        let (code, _, err) = run(&options, Command::Signal("worker".into(), "NOPE".into())).await;
        assert_eq!(code, exit::FAILED);
        assert!(err.starts_with("pidzero: unknown signal"), "{err}");

        let (code, out, _) = run(&options, Command::Shutdown).await;
        assert_eq!((code, out.as_str()), (exit::OK, "pidzero: shutting down\n"));
        let (code, out, _) = run(&options, Command::Health).await;
        assert_eq!(
            (code, out.as_str()),
            (exit::FAILED, "unhealthy: shutting down\n")
        );

        assert_eq!(
            fake.commands(),
            [
                ControlCommand::Stop("web".into()),
                ControlCommand::Stop("worker".into()),
                ControlCommand::Start("worker".into()),
                ControlCommand::Restart("worker".into()),
                ControlCommand::Signal("worker".into(), libc::SIGUSR1),
                ControlCommand::Shutdown,
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn nothing_listening_exits_2_with_a_clear_message() {
    within(async {
        let dir = Dir::new("client-none");
        let missing = Options {
            endpoint: Endpoint::Unix(dir.p("missing.sock")),
            token: None,
        };
        let (code, out, err) = run(&missing, Command::Status { json: false }).await;
        assert_eq!(code, exit::UNREACHABLE);
        assert_eq!(out, "");
        assert!(err.starts_with("pidzero: no pidzero is listening on "), "{err}");

        // A socket file left behind by a dead pidzero.
        let stale = dir.p("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let options = Options {
            endpoint: Endpoint::Unix(stale.clone()),
            token: None,
        };
        let (code, out, err) = run(&options, Command::Health).await;
        assert_eq!((code, out.as_str()), (exit::UNREACHABLE, ""));
        assert_eq!(
            err,
            format!(
                "pidzero: unreachable: no pidzero is listening on {} (connection refused)\n",
                stale.display()
            )
        );

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = Options {
            endpoint: Endpoint::from_url(&format!("http://127.0.0.1:{port}")).unwrap(),
            token: None,
        };
        let (code, _, err) = run(&options, Command::Shutdown).await;
        assert_eq!(code, exit::UNREACHABLE);
        assert_eq!(
            err,
            format!("pidzero: no pidzero is listening on http://127.0.0.1:{port} (connection refused)\n")
        );
    })
    .await;
}

#[tokio::test]
async fn tcp_with_a_token() {
    within(async {
        let (_fake, ctx) = FakeRuntime::start(Some("t0k"));
        let server = api::start(None, localhost(), ctx).await.unwrap();
        let url = format!("http://{}", server.tcp_addr().unwrap());
        let with = |token: Option<&str>| Options {
            endpoint: Endpoint::from_url(&url).unwrap(),
            token: token.map(Into::into),
        };
        let (code, out, _) = run(&with(None), Command::Health).await;
        assert_eq!((code, out.as_str()), (exit::OK, "healthy\n"));
        let (code, _, err) = run(&with(None), Command::Status { json: false }).await;
        assert_eq!(code, exit::FAILED);
        assert!(err.contains("needs the API token"), "{err}");
        let (code, _, _) = run(&with(Some("wrong")), Command::Shutdown).await;
        assert_eq!(code, exit::FAILED);
        let (code, out, _) = run(&with(Some("t0k")), Command::Stop("web".into())).await;
        assert_eq!((code, out.as_str()), (exit::OK, "web: stopping\n"));
    })
    .await;
}
