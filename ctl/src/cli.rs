//! The command line of gwctl's own subcommands (`addr`, `route`, `neigh`, `link`, `stats`,
//! `sync`, `mark`, `import-keepalived`, `completions`), parsed with clap: each has its `--help`, and an unknown option or
//! a bad value is refused naming it. Any other command line is ipvsadm's and never comes
//! here: its getopt grammar and messages are ipvsadm's own ([`crate::ipvsadm`]).
//!
//! iproute2 writes an interface, a gateway and a MAC address as keyword pairs (`dev IFNAME`,
//! `via GW`, `lladdr MAC`); here they are the options `--dev`, `--via`, `--lladdr` spelt
//! without dashes ([`spell_keywords`] rewrites the pairs before clap sees them), so both
//! spellings are accepted and checked alike.

use std::ffi::OsString;
use std::io::Write;
use std::net::IpAddr;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use gwapi::addr::{family_bits, LinkAddr};
use gwapi::api::TransportProtocol;

use crate::Io;

/// `gwctl [--json] [--socket PATH] SUBCOMMAND ...`.
#[derive(Debug, Parser)]
#[command(
    name = "gwctl",
    about = "The gateway's own network and counters (gwctl without a subcommand is ipvsadm: see gwctl --help)",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Print the reply as JSON, for automation
    #[arg(long, global = true)]
    pub json: bool,
    /// The control socket [default: $GATEWAYD_SOCKET, else /run/gatewayd/gatewayd.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<OsString>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Manage(Management),
    /// Apply a keepalived.conf's virtual_server blocks as services, servers and health checks
    #[command(
        long_about = "Apply the virtual_server blocks of a keepalived.conf as services, real servers and health checks, \
                      in one change (all or nothing). Every keyword that cannot be mapped is named with its line and \
                      nothing is applied; VRRP and global_defs blocks are skipped (left to keepalived)."
    )]
    ImportKeepalived {
        /// The keepalived.conf to read
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
        /// Print the ipvsadm rules and --health lines it would apply, and apply nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Print gwctl's completion script for a shell
    #[command(
        long_about = "Print gwctl's completion script for a shell: its subcommands, their options and ipvsadm's options.\n\
                      The Debian package installs them; by hand, e.g.: gwctl completions bash > /etc/bash_completion.d/gwctl"
    )]
    Completions {
        /// The shell the script is for
        shell: clap_complete::Shell,
    },
}

/// The subcommands that configure or show the gateway.
#[derive(Debug, Subcommand)]
pub enum Management {
    /// The gateway's own addresses on its ports (it answers ARP for them and owns their
    /// connected routes)
    Addr {
        #[command(subcommand)]
        action: Option<AddrAction>,
    },
    /// Static routes
    Route {
        #[command(subcommand)]
        action: Option<RouteAction>,
    },
    /// Permanent neighbour (ARP and NDP) entries
    Neigh {
        #[command(subcommand)]
        action: Option<NeighAction>,
    },
    /// The ports: state, MTU, MAC and counters per port and queue
    Link {
        #[command(subcommand)]
        action: Option<ShowAction>,
    },
    /// Per-worker packet, event and drop counters
    Stats {
        #[command(subcommand)]
        action: Option<ShowAction>,
    },
    /// Connection sync: the daemons running (ipvsadm's --start-daemon) and the counters of
    /// the master, the backup and the workers
    Sync {
        #[command(subcommand)]
        action: Option<ShowAction>,
    },
    /// Firewall-mark rules: the packets they match go to the -f service of their mark
    Mark {
        #[command(subcommand)]
        action: Option<MarkAction>,
    },
}

/// `show` (the default): one line per entry, in the syntax that adds it.
#[derive(Debug, Subcommand)]
pub enum ShowAction {
    /// List them (the default)
    #[command(visible_aliases = ["list", "ls"])]
    Show,
}

#[derive(Debug, Subcommand)]
pub enum AddrAction {
    /// Add an address to a port
    #[command(override_usage = "gwctl addr add ADDR[/LEN] dev IFNAME")]
    Add(AddrArgs),
    /// Delete an address from a port
    #[command(override_usage = "gwctl addr del ADDR[/LEN] dev IFNAME")]
    Del(AddrArgs),
    /// List the addresses (the default)
    #[command(visible_aliases = ["list", "ls"])]
    Show,
}

#[derive(Debug, Args)]
pub struct AddrArgs {
    /// The address and its subnet's prefix length (without one, a host address)
    #[arg(value_name = "ADDR[/LEN]", value_parser = host_prefix)]
    pub addr: Prefix,
    /// The port (its name in the configuration), written `dev IFNAME`
    #[arg(long, value_name = "IFNAME")]
    pub dev: String,
}

#[derive(Debug, Subcommand)]
pub enum RouteAction {
    /// Add a route
    #[command(override_usage = "gwctl route add PREFIX|default [via GW] dev IFNAME")]
    Add {
        /// The destination: ADDR/LEN, a host address, or default (0.0.0.0/0; ::/0 with an
        /// IPv6 next hop, as iproute2 takes it)
        #[arg(value_name = "PREFIX", value_parser = route_prefix)]
        dst: RouteDst,
        /// The next hop, written `via GW` (without one, the destination is on the link)
        #[arg(long, value_name = "GW", value_parser = address)]
        via: Option<IpAddr>,
        /// The port the route leaves by, written `dev IFNAME`
        #[arg(long, value_name = "IFNAME")]
        dev: String,
    },
    /// Delete a route
    #[command(override_usage = "gwctl route del PREFIX|default")]
    Del {
        /// The destination, as it was added (default: 0.0.0.0/0, as `ip route del default`)
        #[arg(value_name = "PREFIX", value_parser = route_prefix)]
        dst: RouteDst,
    },
    /// List the routes (the default)
    #[command(visible_aliases = ["list", "ls"])]
    Show,
}

#[derive(Debug, Subcommand)]
pub enum NeighAction {
    /// Add a permanent neighbour
    #[command(override_usage = "gwctl neigh add ADDR lladdr MAC dev IFNAME")]
    Add {
        /// The neighbour's address
        #[arg(value_name = "ADDR", value_parser = address)]
        addr: IpAddr,
        /// Its MAC address (aa:bb:cc:dd:ee:ff), written `lladdr MAC`
        #[arg(long, value_name = "MAC")]
        lladdr: LinkAddr,
        /// The port it is reached on, written `dev IFNAME`
        #[arg(long, value_name = "IFNAME")]
        dev: String,
    },
    /// Delete a permanent neighbour
    #[command(override_usage = "gwctl neigh del ADDR dev IFNAME")]
    Del {
        /// The neighbour's address
        #[arg(value_name = "ADDR", value_parser = address)]
        addr: IpAddr,
        /// The port it was added on, written `dev IFNAME`
        #[arg(long, value_name = "IFNAME")]
        dev: String,
    },
    /// List the permanent neighbours (the default)
    #[command(visible_aliases = ["list", "ls"])]
    Show,
}

#[derive(Debug, Subcommand)]
pub enum MarkAction {
    /// Add a rule: packets to PREFIX (of that protocol, to those ports) get MARK
    Add {
        /// The mark, as the -f service names it (1 to 4294967295)
        #[arg(value_name = "MARK", value_parser = fwmark)]
        mark: u32,
        /// The destination the rule matches
        #[arg(short = 'd', long = "destination", value_name = "ADDR[/LEN]", value_parser = host_prefix)]
        dst: Prefix,
        /// Only this protocol (default: both)
        #[arg(short = 'p', long, value_name = "PROTOCOL")]
        protocol: Option<Protocol>,
        /// Only these destination ports: single ports and LO-HI ranges, comma-separated
        /// (may be repeated; default: every port)
        #[arg(long = "dports", visible_alias = "dport", value_name = "P[,LO-HI]...", value_parser = port_ranges)]
        ports: Vec<PortRanges>,
    },
    /// Delete the rule of a mark
    Del {
        /// The mark of the rule
        #[arg(value_name = "MARK", value_parser = fwmark)]
        mark: u32,
    },
    /// List the rules (the default)
    #[command(visible_aliases = ["list", "ls"])]
    Show,
}

/// An address and a prefix length no longer than its family's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl From<Protocol> for TransportProtocol {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Tcp => TransportProtocol::Tcp,
            Protocol::Udp => TransportProtocol::Udp,
        }
    }
}

/// One `--dports` value: (first, last) port of each comma-separated item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRanges(pub Vec<(u16, u16)>);

fn address(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("invalid address {s:?}"))
}

/// `ADDR/LEN`, or `ADDR` alone for a host prefix.
fn host_prefix(s: &str) -> Result<Prefix, String> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr = address(a)?;
    let len = match len {
        None => family_bits(addr),
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= family_bits(addr) => n,
            _ => return Err(format!("invalid prefix length {l:?} for {addr}")),
        },
    };
    Ok(Prefix { addr, len })
}

/// A route's destination as written: a prefix, or `default`, whose family is the next
/// hop's (iproute2's `ip route add default via 2001:db8::1`), else IPv4's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteDst {
    Default,
    Prefix(Prefix),
}

impl RouteDst {
    /// The prefix meant, given the route's next hop.
    pub fn resolve(self, via: Option<IpAddr>) -> Prefix {
        match self {
            RouteDst::Prefix(p) => p,
            RouteDst::Default => {
                let any = match via {
                    Some(IpAddr::V6(_)) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                    _ => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                };
                Prefix { addr: any, len: 0 }
            }
        }
    }
}

/// A route's destination: [`host_prefix`], or `default`.
fn route_prefix(s: &str) -> Result<RouteDst, String> {
    if s == "default" {
        return Ok(RouteDst::Default);
    }
    host_prefix(s).map(RouteDst::Prefix)
}

fn fwmark(s: &str) -> Result<u32, String> {
    crate::ipvsadm::args::number(s, 1, u32::MAX).ok_or_else(|| format!("invalid fwmark value `{s}' specified"))
}

/// `80,443,8000-8080` (`8000:8080` too, as iptables writes a range).
fn port_ranges(s: &str) -> Result<PortRanges, String> {
    let port = |p: &str| p.parse::<u16>().map_err(|_| format!("invalid port {p:?}"));
    s.split(',')
        .map(|part| {
            let (lo, hi) = part.split_once(['-', ':']).unwrap_or((part, part));
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(format!("invalid port range {part:?}: {lo} is above {hi}"));
            }
            Ok((lo, hi))
        })
        .collect::<Result<_, _>>()
        .map(PortRanges)
}

/// Whether `word` names one of the subcommands here (else the line is ipvsadm's).
pub fn is_subcommand(word: &str) -> bool {
    Cli::command().get_subcommands().any(|c| c.get_name() == word)
}

/// The iproute2 keywords and the subcommands that take them.
const KEYWORDS: [&str; 3] = ["dev", "via", "lladdr"];
const KEYWORD_SUBCOMMANDS: [&str; 3] = ["addr", "route", "neigh"];

/// Rewrites the keyword pairs of `addr`, `route` and `neigh` lines (`dev dpdk0`) as the
/// options clap parses (`--dev=dpdk0`); a keyword's value is taken whatever it reads, so
/// an interface may be called `via`. A keyword without a value becomes the bare option,
/// which clap then reports as missing its value.
pub fn spell_keywords(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut in_keyword_subcommand = false;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            // Its value is a path, whatever it reads.
            "--socket" => {
                out.push(word.clone());
                out.extend(words.next().cloned());
            }
            "--" => {
                out.extend(std::iter::once(word).chain(words).cloned());
                break;
            }
            w if in_keyword_subcommand && KEYWORDS.contains(&w) => match words.next() {
                Some(value) => out.push(format!("--{w}={value}")),
                None => out.push(format!("--{w}")),
            },
            w if !in_keyword_subcommand && !w.starts_with('-') => {
                if !KEYWORD_SUBCOMMANDS.contains(&w) {
                    // A subcommand without keywords.
                    out.extend(std::iter::once(word).chain(words).cloned());
                    break;
                }
                in_keyword_subcommand = true;
                out.push(word.clone());
            }
            _ => out.push(word.clone()),
        }
    }
    out
}

/// Parses a command line (without the program name) that starts, after any global
/// options, with one of the subcommands.
pub fn parse(args: &[String]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("gwctl".to_string()).chain(spell_keywords(args)))
}

/// Prints what clap refused, or the help it was asked for; returns the exit status.
/// A bad value is said by the parser's own message, which names it; any other error
/// (an unknown option, a missing argument) by clap's, with the subcommand's usage.
/// Both end with the line ipvsadm's errors end with.
pub fn report(e: &clap::Error, io: &mut Io) -> i32 {
    if !e.use_stderr() {
        let _ = write!(io.out, "{}", e.render());
        return 0;
    }
    let message = match (e.kind(), std::error::Error::source(e)) {
        (ErrorKind::ValueValidation, Some(source)) => source.to_string(),
        _ => {
            let rendered = e.render().to_string();
            let rendered = rendered.strip_prefix("error: ").unwrap_or(&rendered);
            let rendered = rendered.trim_end().trim_end_matches("For more information, try '--help'.").trim_end();
            // clap's tip for an unknown option would have the keyword passed as a value.
            let lines: Vec<&str> = rendered.lines().filter(|l| !l.trim_start().starts_with("tip: to pass")).collect();
            lines.join("\n").replace("\n\n\n", "\n\n")
        }
    };
    let _ = writeln!(io.err, "{message}");
    let _ = io.err.write_all(crate::ipvsadm::try_help().as_bytes());
    2
}

/// Writes gwctl's completion script for `shell`: the subcommands here with their options,
/// and, at the top level, ipvsadm's options from the table its parser reads. Generated
/// into memory first: clap_complete panics on a failed write, and a closed standard
/// output (`gwctl completions bash | head`) is not worth a panic.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut completion_command(), "gwctl", &mut script);
    let _ = out.write_all(&script);
}

/// [`Cli`]'s command with ipvsadm's options added at the top level, for completion only:
/// they are never parsed by clap.
fn completion_command() -> clap::Command {
    use clap::{Arg, ArgAction};
    use gwapi::cmdline::{Arg as Takes, OPTIONS};
    let mut command = Cli::command();
    for option in OPTIONS {
        // clap's own -h, --help stands for ipvsadm's.
        if option.long == "help" {
            continue;
        }
        // A long name seen before: --json and --socket (the global options here), and
        // --list, whose second letter is -l.
        if command.get_arguments().any(|a| a.get_long() == Some(option.long)) {
            if let Some(letter) = option.short.filter(|&c| !command.get_arguments().any(|a| a.get_short() == Some(c))) {
                command = command.mut_arg(option.long, |a| a.visible_short_alias(letter));
            }
            continue;
        }
        let arg = Arg::new(option.long).long(option.long);
        let arg = match option.short {
            Some(letter) => arg.short(letter),
            None => arg,
        };
        let arg = match option.arg {
            Takes::None => arg.action(ArgAction::SetTrue),
            Takes::Required => arg.action(ArgAction::Set),
            Takes::Optional => arg.action(ArgAction::Set).num_args(0..=1),
        };
        command = command.arg(arg);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    /// The lines `report` prints for a refused command line.
    fn refusal(line: &str) -> String {
        let e = parse(&words(line)).expect_err(line);
        let (mut input, mut out, mut err) = (&b""[..], Vec::new(), Vec::new());
        let code = report(&e, &mut Io { input: &mut input, out: &mut out, err: &mut err });
        assert_eq!((code, out.len()), (2, 0), "{line}");
        String::from_utf8(err).unwrap()
    }

    const TRY: &str = "Try `gwctl -h' or 'gwctl --help' for more information.\n";

    #[test]
    fn keyword_pairs_become_options() {
        assert_eq!(
            spell_keywords(&words("--socket dev route add default via 10.0.0.254 dev via")),
            words("--socket dev route add default --via=10.0.0.254 --dev=via")
        );
        assert_eq!(spell_keywords(&words("addr add 10.0.0.1 dev")), words("addr add 10.0.0.1 --dev"));
        assert_eq!(spell_keywords(&words("mark add 1 -d 10.0.0.1")), words("mark add 1 -d 10.0.0.1"));
        assert_eq!(spell_keywords(&words("neigh del 10.0.0.9 -- dev x")), words("neigh del 10.0.0.9 -- dev x"));
    }

    #[test]
    fn bad_values_are_named_by_their_parser() {
        assert_eq!(
            refusal("addr add 10.0.0.1/33 dev dpdk0"),
            format!("invalid prefix length \"33\" for 10.0.0.1\n{TRY}")
        );
        assert_eq!(refusal("route add 10.0.0.0/8 via gw dev dpdk0"), format!("invalid address \"gw\"\n{TRY}"));
        assert_eq!(
            refusal("neigh add 10.0.0.254 lladdr 52:54 dev dpdk0"),
            format!("\"52:54\" is not a MAC address (aa:bb:cc:dd:ee:ff)\n{TRY}")
        );
        assert_eq!(refusal("mark add 0 -d 10.0.0.1"), format!("invalid fwmark value `0' specified\n{TRY}"));
        assert_eq!(
            refusal("mark add 1 -d 10.0.0.1 --dports 90-80"),
            format!("invalid port range \"90-80\": 90 is above 80\n{TRY}")
        );
        assert_eq!(refusal("mark add 1 -d 10.0.0.1 --dports 80,http"), format!("invalid port \"http\"\n{TRY}"));
    }

    #[test]
    fn misshapen_lines_show_the_usage() {
        let missing = refusal("addr add 10.0.0.1/24");
        assert!(missing.contains("--dev <IFNAME>"), "{missing}");
        assert!(missing.contains("Usage: gwctl addr add ADDR[/LEN] dev IFNAME"), "{missing}");
        assert!(missing.ends_with(TRY), "{missing}");
        let unknown = refusal("addr show extra");
        assert!(unknown.starts_with("unexpected argument 'extra' found"), "{unknown}");
        assert!(refusal("link flap").starts_with("unrecognized subcommand 'flap'"));
        assert!(
            refusal("mark add 1 -d 10.0.0.1 -p icmp").starts_with("invalid value 'icmp' for '--protocol <PROTOCOL>'")
        );
        assert!(refusal("route add default dev dpdk0 --metric 5").starts_with("unexpected argument '--metric' found"));
        assert!(refusal("neigh add 10.0.0.1 via 10.0.0.2 dev dpdk0").starts_with("unexpected argument '--via' found"));
    }

    #[test]
    fn help_is_printed_on_stdout() {
        let e = parse(&words("route add --help")).unwrap_err();
        let (mut input, mut out, mut err) = (&b""[..], Vec::new(), Vec::new());
        assert_eq!(report(&e, &mut Io { input: &mut input, out: &mut out, err: &mut err }), 0);
        let help = String::from_utf8(out).unwrap();
        assert!(
            help.starts_with("Add a route\n\nUsage: gwctl route add PREFIX|default [via GW] dev IFNAME\n"),
            "{help}"
        );
        assert!(help.contains("--via <GW>"), "{help}");
        assert!(err.is_empty());
    }

    #[test]
    fn the_subcommands_are_the_ones_dispatched_here() {
        for word in ["addr", "route", "neigh", "link", "stats", "sync", "mark", "import-keepalived", "completions"] {
            assert!(is_subcommand(word), "{word}");
        }
        // ipvsadm's words stay ipvsadm's.
        for word in ["-L", "--help", "help", "list", "show"] {
            assert!(!is_subcommand(word), "{word}");
        }
    }
}
