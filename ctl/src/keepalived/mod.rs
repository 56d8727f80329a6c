//! `gwctl import-keepalived FILE [--dry-run]`: the LVS part of a keepalived.conf (its
//! `virtual_server` blocks) applied as gatewayd's services, real servers and health checks.
//!
//! A subcommand of its own rather than an ipvsadm-style option: it reads a file in
//! keepalived's language, not an ipvsadm command line, and it is a one-time migration step,
//! not something ipvsadm or keepalived would do; clap gives it its `--help` beside the
//! other subcommands.
//!
//! All or nothing: the file is read whole first ([`syntax`]), every keyword mapped or
//! refused with its line ([`mapping`]: all refusals are listed, not just the first), and
//! only then is everything sent as one `Apply` request, which gatewayd applies whole or
//! not at all. `--dry-run` prints what would be applied instead: the ipvsadm rules (as
//! `gwctl -S -n` prints them, so they can be fed to `gwctl -R`) and one `--health` line per
//! check (as the configuration file's `"health"` takes them).

pub mod mapping;
pub mod syntax;

use std::collections::BTreeMap;
use std::path::Path;

use gwapi::api::{Reply, Request, ServerInfo, ServiceInfo, TrafficStats};
use gwapi::names::Names;
use gwapi::ClientError;

use crate::ipvsadm::args::{Format, Globals};
use crate::Io;
use mapping::Import;

/// Reads and maps a keepalived.conf; the errors are the lines to print.
pub fn read(text: &str) -> Result<Import, Vec<String>> {
    let statements = syntax::parse(text).map_err(|e| vec![e.to_string()])?;
    mapping::import(&statements).map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

/// What `--dry-run` prints: the ipvsadm rules, then the `--health` lines.
pub fn dry_run_text(import: &Import) -> String {
    let fmt = Format { rule: true, numeric: true, nosort: true, ..Format::default() };
    let mut out = String::new();
    for s in &import.services {
        let info = ServiceInfo {
            config: s.config.clone(),
            stats: TrafficStats::default(),
            servers: s.servers.iter().map(|r| ServerInfo::configured(r.config)).collect(),
            laddrs: s.laddrs.iter().map(|(_, laddr)| laddr.clone()).collect(),
        };
        out.push_str(&crate::ipvsadm::format::service_entry(&info, &fmt, &Names::none()));
    }
    for s in &import.services {
        for r in &s.servers {
            if let Some(check) = &r.check {
                out.push_str(&crate::health::command_line(
                    &s.config.service,
                    Some((r.config.addr, r.config.port)),
                    check,
                ));
                out.push('\n');
            }
        }
    }
    out
}

/// Runs the command; returns the exit status: 0 applied (or printed), 1 refused by gatewayd,
/// 2 the file cannot be read or imported, or gatewayd cannot be reached.
pub fn run(file: &Path, dry_run: bool, globals: &Globals, io: &mut Io) -> i32 {
    let shown = file.display();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(io.err, "gwctl: cannot read {shown}: {e}");
            return 2;
        }
    };
    let import = match read(&text) {
        Ok(i) => i,
        Err(errors) => {
            for e in errors {
                let _ = writeln!(io.err, "{shown}: {e}");
            }
            let _ = writeln!(io.err, "gwctl: {shown} cannot be imported; nothing was applied");
            return 2;
        }
    };
    // Each skipped kind of block once, with its lines.
    let mut skipped: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (line, keyword) in &import.skipped {
        skipped.entry(keyword).or_default().push(line.to_string());
    }
    for (keyword, lines) in skipped {
        let s = if lines.len() > 1 { "s" } else { "" };
        let _ = writeln!(
            io.err,
            "gwctl: {shown}: skipped {keyword} (line{s} {}): not the LVS part, left to keepalived",
            lines.join(", ")
        );
    }
    for (line, note) in &import.notes {
        let _ = writeln!(io.err, "gwctl: {shown}: line {line}: {note}");
    }
    if import.services.is_empty() {
        let _ = writeln!(io.err, "gwctl: {shown} has no virtual_server; nothing to apply");
        return 0;
    }
    if dry_run {
        let _ = io.out.write_all(dry_run_text(&import).as_bytes());
        return 0;
    }
    let (lines, changes): (Vec<usize>, Vec<_>) = import.changes().into_iter().unzip();
    match crate::client(globals).call(&Request::Apply { changes }) {
        Ok(reply @ Reply::Applied { .. }) if globals.json => match serde_json::to_string_pretty(&reply) {
            Ok(s) => {
                let _ = writeln!(io.out, "{s}");
                0
            }
            Err(e) => {
                let _ = writeln!(io.err, "gwctl: cannot print the reply as JSON: {e}");
                1
            }
        },
        Ok(_) => 0,
        Err(ClientError::Refused(e)) => {
            let at = e.change_index.and_then(|i| lines.get(i)).map_or(String::new(), |l| format!("line {l}: "));
            let _ = writeln!(io.err, "{shown}: {at}{}", e.message);
            let _ = writeln!(io.err, "gwctl: gatewayd refused {shown}; nothing was applied");
            1
        }
        Err(e) => {
            let _ = writeln!(io.err, "gwctl: {e}");
            2
        }
    }
}
