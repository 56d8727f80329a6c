//! Typed views over packet bytes: one file per protocol, parse and emit, no logic.
