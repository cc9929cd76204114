//! The one integration-test binary (matklad, "Delete Cargo Integration
//! Tests"): every test runs the real `ysync` against the emulator, which is
//! compiled once for all of them. One module a theme; `cargo test --test it
//! mirror::` runs one of them.

#[path = "../emulator/mod.rs"]
mod emulator;
mod support;

mod chaos;
mod check;
mod crash;
mod emulator_quirks;
mod hostile;
mod install;
mod login;
mod mirror;
mod packages;
mod promises;
mod restore;
mod smart;
mod stuck;
mod versions;
mod watch;
