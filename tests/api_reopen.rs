//! `POST /logs/reopen` is a command like the other POSTs: on TCP it needs
//! the token (401 without), and without a token TCP refuses it (403); on
//! the Unix socket it needs none. A log source that cannot reopen answers
//! 503 (the real writer's answers are tested in `log_reopen.rs`).

mod api_support;
mod common;

use api_support::*;
use pidzero::api;

#[tokio::test]
async fn reopen_is_guarded_like_every_post() {
    within(async {
        let dir = Dir::new("reopen-auth");
        let socket = dir.p("api.sock");
        let (fake, ctx) = FakeRuntime::start(Some("s3cret-token"));
        let server = api::start(Some(socket.clone()), localhost(), ctx)
            .await
            .unwrap();
        let addr = server.tcp_addr().unwrap();
        let good = [("Authorization", "Bearer s3cret-token")];
        assert_eq!(tcp(addr, "POST", "/logs/reopen", &[], "").await.status, 401);
        let a = tcp(addr, "POST", "/logs/reopen", &good, "").await;
        assert_eq!(a.status, 503, "{}", a.body);
        let a = unix(&socket, "POST", "/logs/reopen", "").await;
        assert_eq!(a.status, 503, "{}", a.body);
        assert!(a.body.contains("no log writer"), "{}", a.body);
        assert_eq!(unix(&socket, "GET", "/logs/reopen", "").await.status, 405);
        assert!(fake.commands().is_empty(), "not a supervisor command");

        let (_fake, ctx) = FakeRuntime::start(None);
        let server = api::start(None, localhost(), ctx).await.unwrap();
        let addr = server.tcp_addr().unwrap();
        assert_eq!(tcp(addr, "POST", "/logs/reopen", &[], "").await.status, 403);
    })
    .await;
}
