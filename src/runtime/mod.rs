//! The event loop: OS happenings in, supervisor actions out.
