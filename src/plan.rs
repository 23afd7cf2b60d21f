//! Turning validated configuration into what will run.
