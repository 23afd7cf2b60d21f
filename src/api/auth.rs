//! Who may do what (SPEC §8): the Unix socket is protected by its file mode and needs
//! no token; on TCP `GET /health` is open, everything else needs the bearer token
//! when one is set, and without a token TCP serves only `GET`.

use hyper::header::AUTHORIZATION;
use hyper::{HeaderMap, Method};

/// The token in force: the one given on the command line (`--token`, or
/// `PIDZERO_API_TOKEN`, which the command line reads) when not blank, else
/// `api.token`. A blank value counts as unset: it must not silently replace a
/// configured token with "no token". The server and the client both use it.
pub fn pick_token(given: Option<String>, file_token: Option<&str>) -> Option<String> {
    given
        .filter(|t| !t.trim().is_empty())
        .or_else(|| file_token.map(str::to_owned))
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Tcp,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 401: a token is set and the request lacks it.
    Unauthorized,
    /// 403: TCP without a token serves only GET.
    Forbidden,
}

pub fn check(
    transport: Transport,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), Refusal> {
    if transport == Transport::Unix || (method == Method::GET && path == "/health") {
        return Ok(());
    }
    match token {
        Some(token) => {
            let given = headers
                .get(AUTHORIZATION)
                .and_then(|v| bearer(v.as_bytes()))
                .unwrap_or(b"");
            if !given.is_empty() && constant_time_eq(given, token.as_bytes()) {
                Ok(())
            } else {
                Err(Refusal::Unauthorized)
            }
        }
        None if method == Method::GET => Ok(()),
        None => Err(Refusal::Forbidden),
    }
}

/// The credentials of `Bearer CREDENTIALS` (the scheme is case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// Compares in time that depends only on the length of `given`, never on where the
/// first difference is or on the secret's length.
pub fn constant_time_eq(given: &[u8], secret: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != secret.len());
    if secret.is_empty() {
        return given.is_empty();
    }
    for (i, &byte) in given.iter().enumerate() {
        diff |= byte ^ secret[i % secret.len()];
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cres", b"s3cret"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(!constant_time_eq(b"s3crets3cret", b"s3cret"));
        assert!(!constant_time_eq(b"", b"s3cret"));
        assert!(!constant_time_eq(b"x", b""));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn env_token_wins_unless_blank() {
        assert_eq!(
            pick_token(Some("env".into()), Some("file")).as_deref(),
            Some("env")
        );
        assert_eq!(
            pick_token(Some(" ".into()), Some("file")).as_deref(),
            Some("file")
        );
        assert_eq!(pick_token(None, Some("file")).as_deref(), Some("file"));
        assert_eq!(pick_token(None, None), None);
    }

    #[test]
    fn unix_socket_needs_nothing() {
        let h = headers(None);
        assert_eq!(
            check(Transport::Unix, &Method::POST, "/shutdown", &h, Some("t")),
            Ok(())
        );
    }

    #[test]
    fn tcp_with_token() {
        let none = headers(None);
        let good = headers(Some("Bearer t0k"));
        let lower = headers(Some("bearer t0k"));
        let bad = headers(Some("Bearer t0x"));
        let basic = headers(Some("Basic t0k"));
        let get = Method::GET;
        let tok = Some("t0k");
        assert_eq!(check(Transport::Tcp, &get, "/health", &none, tok), Ok(()));
        assert_eq!(
            check(Transport::Tcp, &get, "/daemons", &none, tok),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(check(Transport::Tcp, &get, "/daemons", &good, tok), Ok(()));
        assert_eq!(check(Transport::Tcp, &get, "/daemons", &lower, tok), Ok(()));
        assert_eq!(
            check(Transport::Tcp, &get, "/daemons", &bad, tok),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            check(Transport::Tcp, &get, "/daemons", &basic, tok),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            check(Transport::Tcp, &Method::POST, "/shutdown", &good, tok),
            Ok(())
        );
        // Only GET /health is open; POST /health is not.
        assert_eq!(
            check(Transport::Tcp, &Method::POST, "/health", &none, tok),
            Err(Refusal::Unauthorized)
        );
    }

    #[test]
    fn tcp_without_token_is_read_only() {
        let h = headers(Some("Bearer whatever"));
        assert_eq!(
            check(Transport::Tcp, &Method::GET, "/metrics", &h, None),
            Ok(())
        );
        assert_eq!(
            check(Transport::Tcp, &Method::POST, "/shutdown", &h, None),
            Err(Refusal::Forbidden)
        );
        assert_eq!(
            check(Transport::Tcp, &Method::DELETE, "/daemons", &h, None),
            Err(Refusal::Forbidden)
        );
    }
}
