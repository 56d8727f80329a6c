//! gwctl: the gateway's control tool. A drop-in ipvsadm (every command line of ipvsadm's,
//! with the same output) plus iproute2-style management of the gateway itself
//! (`gwctl addr|route|neigh|link|stats|mark`, whose command line is clap's: [`cli`]), and
//! `gwctl import-keepalived`, the migration from a keepalived.conf ([`keepalived`]).
//!
//! It builds without the data plane: it depends on the API crate (`gwapi`: requests,
//! replies, the client and the ipvsadm command language), and on clap for its own subcommands.
//! Everything is written against [`Io`], so the whole tool runs in-process in tests as well
//! as in the binary.

pub mod cli;
pub mod health;
pub mod ipvsadm;
pub mod keepalived;
pub mod manage;
pub use gwapi::names;

use std::io::{BufRead, Write};

use gwapi::Client;

/// The streams a run reads and writes.
pub struct Io<'a> {
    pub input: &'a mut dyn BufRead,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

/// The client for the socket the options name (`--socket`, then `$GATEWAYD_SOCKET`, then
/// the default path).
pub fn client(globals: &ipvsadm::args::Globals) -> Client {
    Client::new(gwapi::socket_path(globals.socket.as_deref()))
}

/// Runs gwctl with `args` (without the program name); returns the exit status.
pub fn run(args: &[String], io: &mut Io) -> i32 {
    // Global options may precede a subcommand: `gwctl --socket S addr show`.
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--json" => {}
            "--socket" if i + 1 < args.len() => i += 1,
            a if a.starts_with("--socket=") => {}
            _ => break,
        }
        i += 1;
    }
    match args.get(i).map(String::as_str) {
        Some(word) if cli::is_subcommand(word) => match cli::parse(args) {
            Ok(cli::Cli { command: cli::Command::Completions { shell }, .. }) => {
                cli::write_completions(shell, io.out);
                0
            }
            Ok(cli::Cli { json, socket, command: cli::Command::ImportKeepalived { file, dry_run } }) => {
                keepalived::run(&file, dry_run, &ipvsadm::args::Globals { json, socket }, io)
            }
            Ok(cli::Cli { json, socket, command: cli::Command::Manage(m) }) => {
                manage::run(m, ipvsadm::args::Globals { json, socket }, io)
            }
            Err(e) => cli::report(&e, io),
        },
        // Only global options (`gwctl --json`): what a bare `gwctl` does, list the table.
        None if i > 0 => {
            let mut list = vec!["-L".to_string()];
            list.extend(args.iter().cloned());
            ipvsadm::run(&list, io)
        }
        _ => ipvsadm::run(args, io),
    }
}
