//! The pure supervisor state machine.
