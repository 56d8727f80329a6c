//! `l2fwd`'s command line refuses what it cannot do before touching DPDK.
//! (Being an integration test of this package also makes `cargo test` build
//! the `l2fwd` binary, which the end-to-end tests run as a memif peer.)

use std::process::Command;

fn l2fwd(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_l2fwd")).args(args).output().expect("run l2fwd");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_command_lines_are_refused_with_the_reason() {
    // A pair needs two different ports.
    let (code, err) = l2fwd(&["--pair", "net_tap0", "--", "--no-pci"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("expected PORT_A,PORT_B"), "{err}");
    let (code, err) = l2fwd(&["--pair", "net_tap0,net_tap0", "--", "--no-pci"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("expected two different port names"), "{err}");
    // The EAL's arguments are required (after `--`).
    let (code, err) = l2fwd(&["--seconds", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("EAL_ARGS"), "{err}");
    // A report interval of zero would spin.
    let (code, err) = l2fwd(&["--stats-interval", "0", "--", "--no-pci"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--stats-interval"), "{err}");
}
