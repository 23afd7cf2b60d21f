//! `PIDZERO_API_TOKEN` wins over `api.token`. Alone in its test binary because it
//! sets a process-wide environment variable.

mod api_support;

use api_support::*;
use pidzero::api;

#[tokio::test]
async fn the_environment_token_wins_over_the_file() {
    within(async {
        std::env::set_var(api::TOKEN_VARIABLE, "from-env");
        let token = api::resolve_token(Some("from-file"));
        assert_eq!(token.as_deref(), Some("from-env"));

        let (_fake, ctx) = FakeRuntime::start(token.as_deref());
        let server = api::start(None, localhost(), ctx).await.unwrap();
        let addr = server.tcp_addr().unwrap();
        let env = ["Authorization: Bearer from-env"];
        let file = ["Authorization: Bearer from-file"];
        assert_eq!(tcp(addr, "GET", "/daemons", &env, "").await.status, 200);
        assert_eq!(tcp(addr, "GET", "/daemons", &file, "").await.status, 401);

        std::env::set_var(api::TOKEN_VARIABLE, "");
        assert_eq!(
            api::resolve_token(Some("from-file")).as_deref(),
            Some("from-file")
        );
        std::env::remove_var(api::TOKEN_VARIABLE);
        assert_eq!(api::resolve_token(None), None);
    })
    .await;
}
