//! Authorisation on TCP (SPEC §8): bearer token, open `GET /health`, read-only TCP
//! without a token, no token needed on the Unix socket.

mod api_support;
mod common;

use api_support::*;
use pidzero::api;

#[tokio::test]
async fn tcp_with_a_token() {
    within(async {
        let dir = Dir::new("sec-token");
        let socket = dir.p("api.sock");
        let (fake, ctx) = FakeRuntime::start(Some("s3cret-token"));
        let server = api::start(Some(socket.clone()), localhost(), ctx)
            .await
            .unwrap();
        let addr = server.tcp_addr().unwrap();
        let good = [("Authorization", "Bearer s3cret-token")];

        assert_eq!(tcp(addr, "GET", "/health", &[], "").await.status, 200);
        for (method, path) in [
            ("GET", "/daemons"),
            ("GET", "/metrics"),
            ("GET", "/version"),
            ("POST", "/shutdown"),
            ("POST", "/health"),
            ("GET", "/nope"),
        ] {
            let a = tcp(addr, method, path, &[], "").await;
            assert_eq!(a.status, 401, "{method} {path}");
            assert_eq!(a.header("www-authenticate"), Some("Bearer"));
            assert!(!a.body.contains("s3cret"), "the token leaked: {}", a.body);
        }
        for wrong in [
            "Bearer s3cret-tokem",
            "Bearer s3cret-token-and-more",
            "Bearer ",
            "Basic s3cret-token",
            "s3cret-token",
        ] {
            let a = tcp(addr, "GET", "/daemons", &[("Authorization", wrong)], "").await;
            assert_eq!(a.status, 401, "Authorization: {wrong}");
        }
        assert_eq!(tcp(addr, "GET", "/daemons", &good, "").await.status, 200);
        assert_eq!(tcp(addr, "GET", "/metrics", &good, "").await.status, 200);
        let a = tcp(addr, "POST", "/daemons/web/stop", &good, "").await;
        assert_eq!(a.status, 202);
        assert_eq!(
            fake.commands().len(),
            1,
            "refused requests reached the runtime"
        );

        // The Unix socket needs no token.
        assert_eq!(unix(&socket, "GET", "/daemons", "").await.status, 200);
        assert_eq!(unix(&socket, "POST", "/shutdown", "").await.status, 202);
    })
    .await;
}

#[tokio::test]
async fn tcp_without_a_token_is_read_only() {
    within(async {
        let (fake, ctx) = FakeRuntime::start(None);
        let server = api::start(None, localhost(), ctx).await.unwrap();
        let addr = server.tcp_addr().unwrap();
        assert!(server.socket_path().is_none());
        for path in [
            "/health",
            "/daemons",
            "/daemons/web",
            "/metrics",
            "/version",
        ] {
            assert_eq!(tcp(addr, "GET", path, &[], "").await.status, 200, "{path}");
        }
        for (method, path, body) in [
            ("POST", "/shutdown", ""),
            ("POST", "/daemons/web/stop", ""),
            ("POST", "/daemons/web/signal", r#"{"signal":"HUP"}"#),
            ("DELETE", "/daemons", ""),
        ] {
            let a = tcp(addr, method, path, &[], body).await;
            assert_eq!(a.status, 403, "{method} {path}");
        }
        // A token sent anyway changes nothing.
        let a = tcp(
            addr,
            "POST",
            "/shutdown",
            &[("Authorization", "Bearer x")],
            "",
        )
        .await;
        assert_eq!(a.status, 403);
        assert!(fake.commands().is_empty());
    })
    .await;
}
