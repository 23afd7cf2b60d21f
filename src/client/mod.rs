//! The client commands of SPEC §1 (`status`, `health`, `start`, ...): small requests
//! to a running pidzero's control API over its Unix socket or, with `--url`, TCP.

mod commands;
mod http;
mod reload;

pub use commands::{execute, format_table, format_uptime, run, Command};
pub use http::{request, ClientError, Endpoint, Reply};

/// The control socket when neither `--socket` nor `PIDZERO_SOCKET` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/pidzero.sock";

/// Exit statuses of the client commands.
pub mod exit {
    pub const OK: u8 = 0;
    /// The server refused or failed the request (4xx/5xx), or `health` is unhealthy.
    pub const FAILED: u8 = 1;
    /// Nothing answered, or the answer was not HTTP.
    pub const UNREACHABLE: u8 = 2;
}

/// Where to connect and with which token.
#[derive(Clone)]
pub struct Options {
    pub endpoint: Endpoint,
    pub token: Option<String>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}
