//! The control socket file: mode 0600, a stale one replaced, a live one refused,
//! removed on close, and someone else's file never removed.

mod api_support;
mod common;

use std::os::unix::fs::PermissionsExt;

use api_support::*;
use pidzero::api;

#[tokio::test]
async fn socket_mode_and_removal() {
    within(async {
        let dir = Dir::new("sock-mode");
        let socket = dir.p("api.sock");
        let (_fake, ctx) = FakeRuntime::start(None);
        let server = api::start(Some(socket.clone()), None, ctx).await.unwrap();
        assert_eq!(server.socket_path(), Some(socket.as_path()));
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        assert_eq!(unix(&socket, "GET", "/health", "").await.status, 200);
        server.close();
        assert!(!socket.exists(), "the socket file is still there");
    })
    .await;
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    within(async {
        let dir = Dir::new("sock-stale");
        let socket = dir.p("api.sock");
        // A socket file whose listener is gone, as a killed pidzero leaves it.
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        assert!(socket.exists());
        let (_fake, ctx) = FakeRuntime::start(None);
        let _server = api::start(Some(socket.clone()), None, ctx).await.unwrap();
        assert_eq!(unix(&socket, "GET", "/health", "").await.status, 200);
    })
    .await;
}

#[tokio::test]
async fn a_live_socket_is_an_error() {
    within(async {
        let dir = Dir::new("sock-live");
        let socket = dir.p("api.sock");
        let (_fake, ctx) = FakeRuntime::start(None);
        let first = api::start(Some(socket.clone()), None, ctx).await.unwrap();
        let (_fake2, ctx2) = FakeRuntime::start(None);
        let err = api::start(Some(socket.clone()), None, ctx2)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        assert!(
            err.to_string().contains("another pidzero is listening"),
            "{err}"
        );
        // The first one still works.
        assert_eq!(unix(&socket, "GET", "/health", "").await.status, 200);
        drop(first);
    })
    .await;
}

#[tokio::test]
async fn other_files_are_left_alone() {
    within(async {
        let dir = Dir::new("sock-other");
        let socket = dir.p("api.sock");
        std::fs::write(&socket, "not a socket").unwrap();
        let (_fake, ctx) = FakeRuntime::start(None);
        let err = api::start(Some(socket.clone()), None, ctx)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&socket).unwrap(), "not a socket");

        // A file put in place of ours after we bound is not ours to remove.
        std::fs::remove_file(&socket).unwrap();
        let (_fake, ctx) = FakeRuntime::start(None);
        let server = api::start(Some(socket.clone()), None, ctx).await.unwrap();
        std::fs::remove_file(&socket).unwrap();
        std::fs::write(&socket, "someone else's").unwrap();
        drop(server);
        assert_eq!(std::fs::read_to_string(&socket).unwrap(), "someone else's");
    })
    .await;
}

#[tokio::test]
async fn a_tcp_bind_failure_leaves_no_socket_file() {
    within(async {
        let dir = Dir::new("sock-tcpfail");
        let socket = dir.p("api.sock");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (_fake, ctx) = FakeRuntime::start(None);
        let err = api::start(Some(socket.clone()), Some(taken.local_addr().unwrap()), ctx)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot listen on"), "{err}");
        assert!(!socket.exists());
    })
    .await;
}

#[tokio::test]
async fn closing_ends_open_connections() {
    within(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = Dir::new("sock-close");
        let socket = dir.p("api.sock");
        let (_fake, ctx) = FakeRuntime::start(None);
        let server = api::start(Some(socket.clone()), None, ctx).await.unwrap();
        let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
        stream.write_all(b"GET /hea").await.unwrap();
        // Let the server accept it before closing.
        let mut ok = tokio::net::UnixStream::connect(&socket).await.unwrap();
        ok.write_all(&request("GET", "/version", &[], ""))
            .await
            .unwrap();
        let mut bytes = Vec::new();
        ok.read_to_end(&mut bytes).await.unwrap();
        server.close();
        let mut rest = Vec::new();
        let n = stream.read_to_end(&mut rest).await.unwrap_or(0);
        assert_eq!(n, 0);
    })
    .await;
}
