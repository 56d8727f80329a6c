//! `gatewayd`: the gateway daemon.
//!
//! `gatewayd --config FILE [--socket PATH]` runs the load balancer as FILE
//! describes (see `gateway::daemon` and the README for the file) and serves
//! gwctl on the control socket. `gatewayd --check-config --config FILE` only
//! validates FILE (for a unit's `ExecStartPre` or before a restart). The
//! benchmark's plain L2 forwarder is a program of its own, the bench crate's `l2fwd`.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

// The command line, shared with the man page generator (examples/gatewayd_man.rs).
#[path = "gatewayd/options.rs"]
mod options;
use options::Options;

fn main() -> ExitCode {
    // On a bad command line clap prints what is wrong and the usage, and exits 2.
    let opts = Options::parse();
    let config = match gateway::daemon::Config::load(&opts.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gatewayd: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if opts.check_config {
        // A closed stdout loses the line; the exit code is the answer.
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "gatewayd: {}: configuration valid ({} port(s), {} service rule(s))",
            opts.config.display(),
            config.ports.len(),
            config.services.len()
        );
        return ExitCode::SUCCESS;
    }
    // From here on every line goes through the log (see `gateway::logging`); a bad
    // configuration was said before, plainly, since the file names the level.
    gateway::logging::init(config.log_level);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            log::error!("gatewayd: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    // SIGHUP is ignored, and said so: the file only seeds the configuration,
    // which gwctl then changes, so re-reading it would undo those changes; and
    // a closed terminal must not take the gateway down (by default SIGHUP
    // kills at once, leaving the control socket behind).
    match signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(mut hangups) => {
            std::thread::spawn(move || {
                for _ in hangups.forever() {
                    log::warn!(
                        "gatewayd: SIGHUP ignored: the configuration file is read only at start; change the running gateway with gwctl"
                    );
                }
            });
        }
        Err(e) => {
            log::error!("gatewayd: cannot handle SIGHUP: {e}");
            return ExitCode::FAILURE;
        }
    }
    // Test builds only (the `failpoints` feature): FAILPOINTS=name=action,...
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    match gateway::daemon::run(config, opts.socket.as_deref(), stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            log::error!("gatewayd: {msg}");
            ExitCode::FAILURE
        }
    }
}
