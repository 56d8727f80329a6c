//! placeholder until build.rs lands
