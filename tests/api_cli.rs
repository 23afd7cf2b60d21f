//! The built binary's client commands against an in-process server: argument parsing,
//! the environment variables, exit statuses and messages.

mod api_support;
mod common;

use std::process::{Command, Output};

use api_support::*;
use pidzero::api;

/// Runs the binary off the runtime thread so the server keeps answering meanwhile.
async fn pidzero(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pidzero"));
    command
        .args(args)
        .env_remove("PIDZERO_SOCKET")
        .env_remove("PIDZERO_URL")
        .env_remove("PIDZERO_API_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn client_commands_of_the_binary() {
    within(async {
        let dir = Dir::new("cli");
        let socket = dir.p("api.sock");
        let socket_str = socket.to_str().unwrap();
        let (_fake, ctx) = FakeRuntime::start(Some("t0k"));
        let server = api::start(Some(socket.clone()), localhost(), ctx)
            .await
            .unwrap();
        let url = format!("http://{}", server.tcp_addr().unwrap());

        let out = pidzero(&["status", "--socket", socket_str], &[]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("NAME    STATE"),
            "{}",
            text(&out.stdout)
        );

        let out = pidzero(&["health"], &[("PIDZERO_SOCKET", socket_str)]).await;
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(text(&out.stdout), "healthy\n");

        let out = pidzero(&["logs", "web", "-n", "1", "--socket", socket_str], &[]).await;
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(text(&out.stdout).lines().count(), 1);

        let out = pidzero(
            &["stop", "web", "--url", &url],
            &[("PIDZERO_API_TOKEN", "t0k")],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "web: stopping\n");

        let out = pidzero(&["health", "--url", &url], &[]).await;
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(text(&out.stdout), "unhealthy: web\n");

        let out = pidzero(&["shutdown", "--url", &url, "--token", "bad"], &[]).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).starts_with("pidzero: this request needs the API token"));

        let missing = dir.p("missing.sock");
        let out = pidzero(&["health", "--socket", missing.to_str().unwrap()], &[]).await;
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("no pidzero is listening on"),
            "{}",
            text(&out.stderr)
        );

        let out = pidzero(&["status", "--url", "https://x:1"], &[]).await;
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains("https is not supported"));

        // The token never shows in --help, even when set in the environment.
        let out = pidzero(&["--help"], &[("PIDZERO_API_TOKEN", "hush-hush")]).await;
        assert_eq!(out.status.code(), Some(0));
        assert!(!text(&out.stdout).contains("hush-hush"));
    })
    .await;
}
