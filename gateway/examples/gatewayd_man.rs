//! Writes gatewayd's man page, gatewayd(8), as roff on standard output:
//! the synopsis and options from the clap definition gatewayd itself parses
//! (src/bin/gatewayd/options.rs), then the sections clap does not know
//! (files, environment, signals). scripts/package.sh runs it for the package.

use std::io::Write;

use clap::CommandFactory;

#[path = "../src/bin/gatewayd/options.rs"]
#[allow(dead_code)] // the fields are read by gatewayd, not here
mod options;

/// What an operator needs beyond the options, in roff.
const MORE: &str = r#".SH FILES
.TP
.I /etc/gatewayd/gatewayd.json
The configuration the packaged unit starts gatewayd with (JSON: DPDK's
arguments, the ports, routes, neighbours and the services to start with;
see /usr/share/doc/gatewayd/README.md). Checked by
\fBgatewayd \-\-check\-config\fR before each start.
.TP
.I /run/gatewayd/gatewayd.sock
The control socket \fBgwctl\fR(8) talks to (mode 0600; only root and
gatewayd's own user are served).
.TP
.I /lib/systemd/system/gatewayd.service
The systemd unit (Type=notify).
.SH ENVIRONMENT
.TP
.B GATEWAYD_SOCKET
The control socket when neither \-\-socket nor the file's "control_socket" names one.
.TP
.B NOTIFY_SOCKET
Set by systemd: gatewayd sends READY=1 once its workers poll and gwctl is
served, and STOPPING=1 when it begins to stop.
.SH SIGNALS
SIGINT and SIGTERM stop gatewayd cleanly (workers, control socket, ports,
hugepages). SIGHUP is ignored, with a log line: the file only seeds the
configuration, which gwctl then changes.
.SH EXIT STATUS
0 after a clean stop or a valid \-\-check\-config; 1 when a worker failed
or the start failed; 2 for a bad command line or a bad configuration.
.SH SEE ALSO
\fBgwctl\fR(8), \fBipvsadm\fR(8)
"#;

fn main() -> std::io::Result<()> {
    let command = options::Options::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command).section("8").render(&mut out)?;
    out.extend_from_slice(MORE.as_bytes());
    std::io::stdout().lock().write_all(&out)
}
