//! pidzero: a container's PID 1.
//!
//! The crate is split so that every rule can be tested without processes:
//! `config` and `plan` turn files into typed values, `supervisor` is a pure
//! state machine, `log` is the record pipeline, and `runtime` is the thin shell
//! that turns OS happenings into supervisor events and actions into syscalls.

pub mod api;
pub mod check;
pub mod client;
pub mod config;
pub mod config_dir;
pub mod exit;
pub mod health;
pub mod log;
pub mod nosigpipe;
pub mod plan;
pub mod runtime;
pub mod supervisor;
#[cfg(test)]
mod test_support;
