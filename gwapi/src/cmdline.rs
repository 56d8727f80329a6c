//! ipvsadm's command line: the same options, the same combinations, the same error texts.
//!
//! The scanner follows popt as ipvsadm configures it: short options cluster (`-Ln`, `-lnc`),
//! a short option's argument may be attached (`-srr`) or the next word, a long option's
//! argument may follow `=` or be the next word, and `-p`'s optional timeout is taken from the
//! next word only when that word does not start with `-`. Two differences, both more
//! permissive: the command need not come first, and `--` ends the options.
//!
//! It lives in the gateway crate, not in gwctl, so that `gatewayd` can read ipvsadm rule
//! lines (the `-S` format) from its configuration file with the very parser `gwctl -R`
//! uses: [`parse_rules`].
//!
//! The checks after scanning are ipvsadm's `commands_v_options` table (which options each
//! command requires, allows, forbids or allows only one of), extended with columns for the
//! DPVS options (`-z`, `-F`, `-j`) and rows for `-P`, `-Q`, `-G`.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::api::{
    Change, Forwarding, LaddrConfig, PersistenceConfig, ProxyProtocol, ServerConfig, ServiceConfig, SyncDaemonConfig,
    SyncState, TransportProtocol, VirtualService,
};
use crate::names::Names;

pub mod health;

/// ipvsadm's MAX_TIMEOUT: 31 days.
pub const MAX_TIMEOUT: u32 = 86400 * 31;

/// A command-line error: printed to stderr, exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub message: Option<String>,
    /// Whether to add the "Try `gwctl -h' ..." line.
    pub try_help: bool,
}

impl UsageError {
    fn fail(message: impl Into<String>) -> UsageError {
        UsageError { message: Some(message.into()), try_help: false }
    }

    fn try_help(message: Option<String>) -> UsageError {
        UsageError { message, try_help: true }
    }
}

/// The commands, in ipvsadm's order (their names appear in error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    AddLaddr,
    DelLaddr,
    GetLaddr,
}

impl Cmd {
    const NAMES: [&'static str; 17] = [
        "add-service",
        "edit-service",
        "delete-service",
        "flush",
        "list",
        "add-server",
        "delete-server",
        "edit-server",
        "set",
        "start-daemon",
        "stop-daemon",
        "restore",
        "save",
        "zero",
        "add-laddr",
        "del-laddr",
        "get-laddr",
    ];

    fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// Option bits, in ipvsadm's order, then the extensions.
pub mod opt {
    pub const NUMERIC: u32 = 1 << 0;
    pub const CONNECTION: u32 = 1 << 1;
    pub const SERVICE: u32 = 1 << 2;
    pub const SCHEDULER: u32 = 1 << 3;
    pub const PERSISTENT: u32 = 1 << 4;
    pub const NETMASK: u32 = 1 << 5;
    pub const SERVER: u32 = 1 << 6;
    pub const FORWARD: u32 = 1 << 7;
    pub const WEIGHT: u32 = 1 << 8;
    pub const UTHRESHOLD: u32 = 1 << 9;
    pub const LTHRESHOLD: u32 = 1 << 10;
    pub const MCAST: u32 = 1 << 11;
    pub const TIMEOUT: u32 = 1 << 12;
    pub const DAEMON: u32 = 1 << 13;
    pub const STATS: u32 = 1 << 14;
    pub const RATE: u32 = 1 << 15;
    pub const THRESHOLDS: u32 = 1 << 16;
    pub const PERSISTENTCONN: u32 = 1 << 17;
    pub const NOSORT: u32 = 1 << 18;
    pub const SYNCID: u32 = 1 << 19;
    pub const EXACT: u32 = 1 << 20;
    pub const ONEPACKET: u32 = 1 << 21;
    pub const LADDR: u32 = 1 << 22;
    pub const IFNAME: u32 = 1 << 23;
    pub const SYNPROXY: u32 = 1 << 24;
    pub const PROXYPROTOCOL: u32 = 1 << 25;
    pub const COUNT: usize = 26;

    pub const NAMES: [&str; COUNT] = [
        "numeric",
        "connection",
        "service-address",
        "scheduler",
        "persistent",
        "netmask",
        "real-server",
        "forwarding-method",
        "weight",
        "u-threshold",
        "l-threshold",
        "mcast-interface",
        "timeout",
        "daemon",
        "stats",
        "rate",
        "thresholds",
        "persistent-conn",
        "nosort",
        "syncid",
        "exact",
        "ops",
        "laddr",
        "ifname",
        "synproxy",
        "proxy-protocol",
    ];
}

/// ipvsadm's `commands_v_options` plus the extension columns and rows.
/// '+' required, 'x' illegal, '1' at most one of the '1's, ' ' optional.
const COMMANDS_V_OPTIONS: [&[u8; opt::COUNT]; 17] = [
    //  n c s s p M r f w x y m t d s r t p s s e o z F j p
    b"xx+   xxxxxxxxxxxxxxx xx  ", // ADD
    b"xx+   xxxxxxxxxxxxxxx xx  ", // EDIT
    b"xx+xxxxxxxxxxxxxxxxxxxxxxx", // DEL
    b"xxxxxxxxxxxxxxxxxxxxxxxxxx", // FLUSH
    b" 11xxxxxxxxx11       xxxxx", // LIST
    b"xx+xxx+    xxxxxxxxxxxxxxx", // ADDSRV
    b"xx+xxx+xxxxxxxxxxxxxxxxxxx", // DELSRV
    b"xx+xxx+    xxxxxxxxxxxxxxx", // EDITSRV
    b"xxxxxxxxxxxxxxxxxxxxxxxxxx", // TIMEOUT
    b"xxxxxxxxxxx xxxxxxx xxxxxx", // STARTD
    b"xxxxxxxxxxxxxxxxxxx xxxxxx", // STOPD
    b"xxxxxxxxxxxxxxxxxxxxxxxxxx", // RESTORE
    b" xxxxxxxxxxxxxxxxxxxxxxxxx", // SAVE
    b"xx xxxxxxxxxxxxxxxxxxxxxxx", // ZERO
    b"xx+xxxxxxxxxxxxxxxxxxx++xx", // ADDLADDR
    b"xx+xxxxxxxxxxxxxxxxxxx+ xx", // DELLADDR
    b"xx+xxxxxxxxxxxxxxxxxxxxxxx", // GETLADDR
];

/// How listings are printed (ipvsadm's FMT_* flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    pub numeric: bool,
    pub rule: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    pub nosort: bool,
    pub exact: bool,
}

/// A `-t`/`-u`/`-f` argument, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceArg {
    Inet { proto: TransportProtocol, addr: IpAddr, port: u16 },
    Fwmark { mark: u32, ipv6: bool },
}

/// What a parsed command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Help,
    Version,
    Ipvs(Box<Command>),
    /// `--health ...` (see [`health`]).
    Health(health::HealthCommand),
}

/// One ipvsadm command with everything it needs, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub cmd: Cmd,
    pub options: u32,
    pub format: Format,
    pub service: Option<ServiceArg>,
    pub scheduler: String,
    /// `-p`: the timeout.
    pub persistent: Option<u32>,
    /// The persistence netmask (defaults to the full mask of the service's family).
    pub netmask: IpAddr,
    pub server: Option<(IpAddr, u16)>,
    pub forwarding: Forwarding,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub one_packet: bool,
    pub synproxy: bool,
    /// `--proxy-protocol v1|v2`.
    pub proxy_protocol: Option<ProxyProtocol>,
    pub laddr: Option<IpAddr>,
    pub ifname: Option<String>,
    pub timeouts: (u32, u32, u32),
    pub daemon_state: Option<SyncState>,
    pub mcast_interface: String,
    pub syncid: u32,
}

/// gwctl's own global options, accepted on every command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Globals {
    pub json: bool,
    pub socket: Option<OsString>,
}

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    None,
    Required,
    /// In the same word (`-p300`, `--persistent=300`) or the next one unless it starts with `-`.
    Optional,
}

/// One option of ipvsadm's getopt table.
#[derive(Debug)]
pub struct OptSpec {
    pub long: &'static str,
    pub short: Option<char>,
    pub arg: Arg,
}

const fn o(long: &'static str, short: Option<char>, arg: Arg) -> OptSpec {
    OptSpec { long, short, arg }
}

/// Every option the parser knows, as ipvsadm's getopt table lists them (gwctl's shell
/// completions are generated from it).
pub const OPTIONS: &[OptSpec] = &[
    o("add-service", Some('A'), Arg::None),
    o("edit-service", Some('E'), Arg::None),
    o("delete-service", Some('D'), Arg::None),
    o("clear", Some('C'), Arg::None),
    o("list", Some('L'), Arg::None),
    o("list", Some('l'), Arg::None),
    o("zero", Some('Z'), Arg::None),
    o("add-server", Some('a'), Arg::None),
    o("edit-server", Some('e'), Arg::None),
    o("delete-server", Some('d'), Arg::None),
    o("set", None, Arg::None),
    o("help", Some('h'), Arg::None),
    o("version", Some('v'), Arg::None),
    o("restore", Some('R'), Arg::None),
    o("save", Some('S'), Arg::None),
    o("start-daemon", None, Arg::Required),
    o("stop-daemon", None, Arg::Required),
    o("add-laddr", Some('P'), Arg::None),
    o("del-laddr", Some('Q'), Arg::None),
    o("get-laddr", Some('G'), Arg::None),
    o("tcp-service", Some('t'), Arg::Required),
    o("udp-service", Some('u'), Arg::Required),
    o("fwmark-service", Some('f'), Arg::Required),
    o("scheduler", Some('s'), Arg::Required),
    o("persistent", Some('p'), Arg::Optional),
    o("netmask", Some('M'), Arg::Required),
    o("real-server", Some('r'), Arg::Required),
    o("masquerading", Some('m'), Arg::None),
    o("ipip", Some('i'), Arg::None),
    o("gatewaying", Some('g'), Arg::None),
    o("fullnat", Some('b'), Arg::None),
    o("weight", Some('w'), Arg::Required),
    o("u-threshold", Some('x'), Arg::Required),
    o("l-threshold", Some('y'), Arg::Required),
    o("numeric", Some('n'), Arg::None),
    o("connection", Some('c'), Arg::None),
    o("mcast-interface", None, Arg::Required),
    o("syncid", None, Arg::Required),
    o("timeout", None, Arg::None),
    o("daemon", None, Arg::None),
    o("stats", None, Arg::None),
    o("rate", None, Arg::None),
    o("thresholds", None, Arg::None),
    o("persistent-conn", None, Arg::None),
    o("nosort", None, Arg::None),
    o("sort", None, Arg::None),
    o("exact", Some('X'), Arg::None),
    o("ipv6", Some('6'), Arg::None),
    o("ops", Some('o'), Arg::None),
    o("laddr", Some('z'), Arg::Required),
    o("ifname", Some('F'), Arg::Required),
    o("synproxy", Some('j'), Arg::Required),
    o("proxy-protocol", None, Arg::Required),
    o("json", None, Arg::None),
    o("socket", None, Arg::Required),
];

/// One scanned option: its long name (the identity) and its argument.
struct Scanned {
    name: &'static str,
    value: Option<String>,
}

/// Splits argv (without the program name) into options and positional words.
fn scan(args: &[String]) -> Result<(Vec<Scanned>, Vec<String>), UsageError> {
    let mut out = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    let next_word = |i: &mut usize| -> Option<String> {
        let w = args.get(*i + 1).cloned();
        if w.is_some() {
            *i += 1;
        }
        w
    };
    while i < args.len() {
        let word = &args[i];
        if word == "--" {
            positional.extend(args[i + 1..].iter().cloned());
            break;
        } else if let Some(long) = word.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let spec = OPTIONS
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| UsageError::try_help(Some(format!("{word}: unknown option"))))?;
            let value = match spec.arg {
                Arg::None => {
                    if attached.is_some() {
                        return Err(UsageError::try_help(Some(format!("{word}: option does not take an argument"))));
                    }
                    None
                }
                Arg::Required => match attached {
                    Some(v) => Some(v),
                    None => Some(
                        next_word(&mut i)
                            .ok_or_else(|| UsageError::try_help(Some(format!("{word}: missing argument"))))?,
                    ),
                },
                Arg::Optional => match attached {
                    Some(v) => Some(v),
                    None => match args.get(i + 1) {
                        Some(w) if !w.starts_with('-') => next_word(&mut i),
                        _ => None,
                    },
                },
            };
            out.push(Scanned { name: spec.long, value });
        } else if word.len() > 1 && word.starts_with('-') {
            let cluster: Vec<char> = word[1..].chars().collect();
            let mut k = 0;
            while k < cluster.len() {
                let c = cluster[k];
                let spec = OPTIONS
                    .iter()
                    .find(|s| s.short == Some(c))
                    .ok_or_else(|| UsageError::try_help(Some(format!("-{c}: unknown option"))))?;
                let rest: String = cluster[k + 1..].iter().collect();
                let value = match spec.arg {
                    Arg::None => None,
                    Arg::Required => {
                        k = cluster.len();
                        if rest.is_empty() {
                            Some(
                                next_word(&mut i)
                                    .ok_or_else(|| UsageError::try_help(Some(format!("-{c}: missing argument"))))?,
                            )
                        } else {
                            Some(rest)
                        }
                    }
                    Arg::Optional => {
                        k = cluster.len();
                        if !rest.is_empty() {
                            Some(rest)
                        } else {
                            match args.get(i + 1) {
                                Some(w) if !w.starts_with('-') => next_word(&mut i),
                                _ => None,
                            }
                        }
                    }
                };
                // `-l` is `--list` too; keep the identity, not the letter.
                out.push(Scanned { name: spec.long, value });
                k += 1;
            }
        } else {
            positional.push(word.clone());
        }
        i += 1;
    }
    Ok((out, positional))
}

/// Parses an ipvsadm command line (without the program name).
pub fn parse(args: &[String], names: &Names) -> Result<(Action, Globals), UsageError> {
    if health::is_health(args) {
        return health::parse(args, names).map(|(c, g)| (Action::Health(c), g));
    }
    let (scanned, mut positional) = scan(args)?;
    let mut globals = Globals::default();
    let mut cmd: Option<Cmd> = None;
    let mut options = 0u32;
    let mut format = Format::default();
    let set_cmd = |cmd: &mut Option<Cmd>, c: Cmd| -> Result<(), UsageError> {
        if cmd.is_some() {
            return Err(UsageError::fail("multiple commands specified"));
        }
        *cmd = Some(c);
        Ok(())
    };
    let set_opt = |options: &mut u32, bit: u32| -> Result<(), UsageError> {
        if *options & bit != 0 {
            let name = opt::NAMES[bit.trailing_zeros() as usize];
            return Err(UsageError::fail(format!("multiple '{name}' options specified")));
        }
        *options |= bit;
        Ok(())
    };

    // Raw values, resolved once the service (and so the protocol and family) is known.
    let mut service_raw: Option<(char, String)> = None;
    let mut server_raw: Option<String> = None;
    let mut netmask_raw: Option<String> = None;
    let mut c = Command {
        cmd: Cmd::List,
        options: 0,
        format: Format::default(),
        service: None,
        scheduler: String::new(),
        persistent: None,
        netmask: IpAddr::V4(Ipv4Addr::BROADCAST),
        server: None,
        forwarding: Forwarding::Route,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        one_packet: false,
        synproxy: false,
        proxy_protocol: None,
        laddr: None,
        ifname: None,
        timeouts: (0, 0, 0),
        daemon_state: None,
        mcast_interface: String::new(),
        syncid: 255,
    };
    let mut ipv6_fwmark = false;
    let mut help = false;
    let mut version = false;

    for s in scanned {
        let given = s.value.is_some();
        let v = s.value.unwrap_or_default();
        match s.name {
            "add-service" => set_cmd(&mut cmd, Cmd::Add)?,
            "edit-service" => set_cmd(&mut cmd, Cmd::Edit)?,
            "delete-service" => set_cmd(&mut cmd, Cmd::Del)?,
            "clear" => set_cmd(&mut cmd, Cmd::Flush)?,
            "list" => set_cmd(&mut cmd, Cmd::List)?,
            "zero" => set_cmd(&mut cmd, Cmd::Zero)?,
            "add-server" => set_cmd(&mut cmd, Cmd::AddDest)?,
            "edit-server" => set_cmd(&mut cmd, Cmd::EditDest)?,
            "delete-server" => set_cmd(&mut cmd, Cmd::DelDest)?,
            "set" => set_cmd(&mut cmd, Cmd::Timeout)?,
            "restore" => set_cmd(&mut cmd, Cmd::Restore)?,
            "save" => set_cmd(&mut cmd, Cmd::Save)?,
            "add-laddr" => set_cmd(&mut cmd, Cmd::AddLaddr)?,
            "del-laddr" => set_cmd(&mut cmd, Cmd::DelLaddr)?,
            "get-laddr" => set_cmd(&mut cmd, Cmd::GetLaddr)?,
            "help" => help = true,
            "version" => version = true,
            "start-daemon" | "stop-daemon" => {
                let start = s.name == "start-daemon";
                set_cmd(&mut cmd, if start { Cmd::StartDaemon } else { Cmd::StopDaemon })?;
                c.daemon_state = Some(match v.as_str() {
                    "master" => SyncState::Master,
                    "backup" => SyncState::Backup,
                    // Both texts are ipvsadm's, typo included.
                    _ if start => return Err(UsageError::fail("illegal start-daemon parameter specified")),
                    _ => return Err(UsageError::fail("illegal start_daemon specified")),
                });
            }
            "tcp-service" | "udp-service" | "fwmark-service" => {
                set_opt(&mut options, opt::SERVICE)?;
                let letter = match s.name {
                    "tcp-service" => 't',
                    "udp-service" => 'u',
                    _ => 'f',
                };
                service_raw = Some((letter, v));
            }
            "scheduler" => {
                set_opt(&mut options, opt::SCHEDULER)?;
                c.scheduler = v;
            }
            "persistent" => {
                set_opt(&mut options, opt::PERSISTENT)?;
                c.persistent = Some(if given { parse_timeout(&v, 1, MAX_TIMEOUT)? } else { 300 });
            }
            "netmask" => {
                set_opt(&mut options, opt::NETMASK)?;
                netmask_raw = Some(v);
            }
            "real-server" => {
                set_opt(&mut options, opt::SERVER)?;
                server_raw = Some(v);
            }
            "masquerading" | "ipip" | "gatewaying" | "fullnat" => {
                set_opt(&mut options, opt::FORWARD)?;
                c.forwarding = match s.name {
                    "masquerading" => Forwarding::Masq,
                    "ipip" => Forwarding::Tunnel,
                    "gatewaying" => Forwarding::Route,
                    _ => Forwarding::FullNat,
                };
            }
            "weight" => {
                set_opt(&mut options, opt::WEIGHT)?;
                c.weight = number(&v, 0, 65535).ok_or_else(|| UsageError::fail("illegal weight specified"))?;
            }
            "u-threshold" => {
                set_opt(&mut options, opt::UTHRESHOLD)?;
                c.u_threshold =
                    number(&v, 0, i32::MAX as u32).ok_or_else(|| UsageError::fail("illegal u_threshold specified"))?;
            }
            "l-threshold" => {
                set_opt(&mut options, opt::LTHRESHOLD)?;
                c.l_threshold =
                    number(&v, 0, i32::MAX as u32).ok_or_else(|| UsageError::fail("illegal l_threshold specified"))?;
            }
            "numeric" => {
                set_opt(&mut options, opt::NUMERIC)?;
                format.numeric = true;
            }
            "connection" => set_opt(&mut options, opt::CONNECTION)?,
            "mcast-interface" => {
                set_opt(&mut options, opt::MCAST)?;
                c.mcast_interface = v;
            }
            "syncid" => {
                set_opt(&mut options, opt::SYNCID)?;
                c.syncid = number(&v, 0, 255).ok_or_else(|| UsageError::fail("illegal syncid specified"))?;
            }
            "timeout" => set_opt(&mut options, opt::TIMEOUT)?,
            "daemon" => set_opt(&mut options, opt::DAEMON)?,
            "stats" => {
                set_opt(&mut options, opt::STATS)?;
                format.stats = true;
            }
            "rate" => {
                set_opt(&mut options, opt::RATE)?;
                format.rate = true;
            }
            "thresholds" => {
                set_opt(&mut options, opt::THRESHOLDS)?;
                format.thresholds = true;
            }
            "persistent-conn" => {
                set_opt(&mut options, opt::PERSISTENTCONN)?;
                format.persistent_conn = true;
            }
            "nosort" => {
                set_opt(&mut options, opt::NOSORT)?;
                format.nosort = true;
            }
            "sort" => {} // the default; accepted for compatibility, as ipvsadm does
            "exact" => {
                set_opt(&mut options, opt::EXACT)?;
                format.exact = true;
            }
            "ipv6" => {
                if !matches!(service_raw, Some(('f', _))) {
                    return Err(UsageError::fail("-6 used before -f\n"));
                }
                ipv6_fwmark = true;
            }
            "ops" => {
                set_opt(&mut options, opt::ONEPACKET)?;
                c.one_packet = true;
            }
            "laddr" => {
                set_opt(&mut options, opt::LADDR)?;
                c.laddr =
                    Some(v.parse().map_err(|_| UsageError::fail(format!("illegal local address `{v}' specified")))?);
            }
            "ifname" => {
                set_opt(&mut options, opt::IFNAME)?;
                c.ifname = Some(v);
            }
            "synproxy" => {
                set_opt(&mut options, opt::SYNPROXY)?;
                c.synproxy = match v.as_str() {
                    "enable" => true,
                    "disable" => false,
                    _ => {
                        return Err(UsageError::fail(format!(
                            "illegal synproxy value `{v}' specified (enable or disable)"
                        )))
                    }
                };
            }
            "proxy-protocol" => {
                set_opt(&mut options, opt::PROXYPROTOCOL)?;
                c.proxy_protocol = Some(ProxyProtocol::parse(&v).ok_or_else(|| {
                    UsageError::fail(format!("illegal proxy-protocol value `{v}' specified (v1 or v2)"))
                })?);
            }
            "json" => globals.json = true,
            "socket" => globals.socket = Some(OsString::from(v)),
            other => unreachable_option(other)?,
        }
    }

    if help {
        return Ok((Action::Help, globals));
    }
    if version {
        return Ok((Action::Version, globals));
    }
    let Some(cmd) = cmd else {
        // ipvsadm with options but no command: only the pointer to the help.
        return Err(UsageError::try_help(None));
    };
    c.cmd = cmd;

    if cmd == Cmd::Timeout {
        if positional.len() < 3 {
            return Err(UsageError::fail("--set option requires 3 timeout values"));
        }
        let t: Vec<String> = positional.drain(..3).collect();
        c.timeouts = (
            parse_timeout(&t[0], 0, MAX_TIMEOUT)?,
            parse_timeout(&t[1], 0, MAX_TIMEOUT)?,
            parse_timeout(&t[2], 0, MAX_TIMEOUT)?,
        );
    }
    if let Some(extra) = positional.first() {
        return Err(UsageError::fail(format!("unexpected argument {extra}")));
    }

    // Resolve the service, then what depends on its protocol and family.
    if let Some((letter, raw)) = service_raw {
        c.service = Some(match letter {
            'f' => ServiceArg::Fwmark { mark: parse_fwmark(&raw)?, ipv6: ipv6_fwmark },
            _ => {
                let proto = if letter == 't' { TransportProtocol::Tcp } else { TransportProtocol::Udp };
                let (addr, port) = parse_service(&raw, proto, names)
                    .ok_or_else(|| UsageError::fail("illegal virtual server address[:port] specified"))?;
                ServiceArg::Inet { proto, addr, port: port.unwrap_or(0) }
            }
        });
    }
    let (svc_v6, svc_port, svc_proto, is_fwmark) = match c.service {
        Some(ServiceArg::Inet { proto, addr, port }) => (addr.is_ipv6(), port, proto, false),
        Some(ServiceArg::Fwmark { ipv6, .. }) => (ipv6, 0, TransportProtocol::Tcp, true),
        None => (false, 0, TransportProtocol::Tcp, false),
    };
    if svc_v6 {
        c.netmask = IpAddr::V6(Ipv6Addr::from(u128::MAX));
    }
    if let Some(raw) = netmask_raw {
        c.netmask = if svc_v6 {
            let bits = number(&raw, 1, 128).ok_or_else(|| UsageError::fail("illegal ipv6 netmask specified"))?;
            IpAddr::V6(Ipv6Addr::from(u128::MAX << (128 - bits)))
        } else if number(&raw, 0, 128).is_some() {
            // ipvsadm's `inet_aton` would take `64` as the mask 0.0.0.64, which the kernel
            // keeps and applies; a prefix length is what was meant, and only IPv6 takes one.
            return Err(UsageError::fail(format!(
                "illegal virtual server persistent mask specified: `{raw}' is a prefix length, \
                 which only an IPv6 service takes; an IPv4 service's mask is dotted (255.255.255.0)"
            )));
        } else {
            let mask = raw
                .parse::<Ipv4Addr>()
                .ok()
                .or_else(|| match names.host_addr(&raw, false) {
                    Some(IpAddr::V4(a)) => Some(a),
                    _ => None,
                })
                .ok_or_else(|| UsageError::fail("illegal virtual server persistent mask specified"))?;
            IpAddr::V4(mask)
        };
    }
    if let Some(raw) = server_raw {
        let (addr, port) = parse_service(&raw, svc_proto, names)
            .ok_or_else(|| UsageError::fail("illegal real server address[:port] specified"))?;
        c.server = Some((addr, port.unwrap_or(svc_port)));
    }

    check_options(cmd, options)?;
    c.options = options;
    c.format = format;

    match cmd {
        Cmd::Add | Cmd::Edit => {
            if let Some(ServiceArg::Inet { port: 0, .. }) = c.service {
                if c.persistent.is_none() {
                    return Err(UsageError::fail("Zero port specified for non-persistent service"));
                }
            }
            if c.one_packet && !is_fwmark && svc_proto != TransportProtocol::Udp {
                return Err(UsageError::fail("One-Packet Scheduling is only for UDP virtual services"));
            }
            // Refused rather than listed and saved while every datagram
            // would still get a connection entry (see apply::service_spec).
            if c.one_packet {
                return Err(UsageError::fail("One-Packet Scheduling (-o) is not supported by this gateway"));
            }
            if c.scheduler.is_empty() {
                c.scheduler = "wlc".to_string();
            }
        }
        Cmd::StartDaemon if c.mcast_interface.is_empty() => c.mcast_interface = "eth0".to_string(),
        // DR and TUN cannot change the port: ipvsadm quietly uses the service's.
        Cmd::AddDest | Cmd::EditDest => {
            if !is_fwmark && matches!(c.forwarding, Forwarding::Route | Forwarding::Tunnel) {
                if let Some((addr, _)) = c.server {
                    c.server = Some((addr, svc_port));
                }
            }
            // ipvsadm's own check; the gateway then refuses a tunnelled server of the other
            // family too. Not for a fwmark service: here its mark rules may match both
            // families (`gwctl mark add`), so its servers may be of both. Nor for an IPv4
            // server of an IPv6 service in full NAT (`-b`, DPVS's extension): NAT64, as
            // DPVS's ipvsadm allows it.
            let nat64 = svc_v6 && c.forwarding == Forwarding::FullNat;
            if !is_fwmark
                && !nat64
                && c.server.is_some_and(|(addr, _)| addr.is_ipv6() != svc_v6)
                && c.forwarding != Forwarding::Tunnel
            {
                return Err(UsageError::fail("Different address family is allowed only for tunneling servers"));
            }
        }
        // `-c --persistent-conn` is allowed: the connection listing's wider title.
        Cmd::List
            if (options & (opt::CONNECTION | opt::TIMEOUT | opt::DAEMON) != 0
                && options & (opt::STATS | opt::RATE | opt::THRESHOLDS) != 0)
                || (options & (opt::TIMEOUT | opt::DAEMON) != 0 && options & opt::PERSISTENTCONN != 0) =>
        {
            return Err(UsageError::fail("options conflicts in the list command"));
        }
        Cmd::Save => c.format.rule = true,
        _ => {}
    }
    Ok((Action::Ipvs(Box::new(c)), globals))
}

fn unreachable_option(name: &str) -> Result<(), UsageError> {
    // Every entry of OPTIONS is matched above; a new entry without a branch lands here
    // rather than being ignored.
    Err(UsageError::fail(format!("option --{name} is not handled")))
}

/// ipvsadm's `generic_opt_check`.
fn check_options(cmd: Cmd, options: u32) -> Result<(), UsageError> {
    let row = COMMANDS_V_OPTIONS[cmd as usize];
    let mut first_exclusive: Option<usize> = None;
    for (j, &rule) in row.iter().enumerate() {
        let given = options & (1 << j) != 0;
        match (rule, given) {
            (b'+', false) => {
                return Err(UsageError::fail(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    opt::NAMES[j],
                    cmd.name()
                )))
            }
            (b'x', true) => {
                return Err(UsageError::fail(format!(
                    "Illegal '{}' option with the '{}' command",
                    opt::NAMES[j],
                    cmd.name()
                )))
            }
            (b'1', true) => match first_exclusive {
                None => first_exclusive = Some(j),
                Some(last) => {
                    return Err(UsageError::fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        opt::NAMES[j],
                        opt::NAMES[last],
                        cmd.name()
                    )))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// ipvsadm's `string_to_number`: decimal, the whole string, within bounds.
pub fn number(s: &str, min: u32, max: u32) -> Option<u32> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (u64::from(min) <= n && n <= u64::from(max)).then_some(n as u32)
}

fn parse_timeout(s: &str, min: u32, max: u32) -> Result<u32, UsageError> {
    number(s, min, max).ok_or_else(|| UsageError::fail(format!("invalid timeout value `{s}' specified")))
}

fn parse_fwmark(s: &str) -> Result<u32, UsageError> {
    number(s, 1, u32::MAX).ok_or_else(|| UsageError::fail(format!("invalid fwmark value `{s}' specified")))
}

/// ipvsadm's `parse_service`: `host[:port]`, `[v6addr]:port` or a bare IPv6 address; hosts
/// and ports may be names. `None` for anything else (including a bare number).
pub fn parse_service(s: &str, proto: TransportProtocol, names: &Names) -> Option<(IpAddr, Option<u16>)> {
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port_of =
        |p: &str| -> Option<u16> { number(p, 0, 65535).map(|n| n as u16).or_else(|| names.service_port(p, proto)) };
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        let addr: Ipv6Addr = addr.parse().ok()?;
        return Some((IpAddr::V6(addr), Some(port_of(port)?)));
    }
    if let Ok(v6) = s.parse::<Ipv6Addr>() {
        return Some((IpAddr::V6(v6), None));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let addr = host.parse::<Ipv4Addr>().map(IpAddr::V4).ok().or_else(|| names.host_addr(host, false))?;
    let port = match port {
        Some(p) => Some(port_of(p)?),
        None => None,
    };
    Some((addr, port))
}

/// The API form of a service argument.
pub fn virtual_service(s: &ServiceArg) -> VirtualService {
    match *s {
        ServiceArg::Inet { proto: TransportProtocol::Tcp, addr, port } => VirtualService::Tcp { addr, port },
        ServiceArg::Inet { addr, port, .. } => VirtualService::Udp { addr, port },
        ServiceArg::Fwmark { mark, .. } => VirtualService::Fwmark { mark },
    }
}

/// The changes a mutating command asks for; `None` for commands that are not changes
/// (listings, `-Z`, `-R`).
pub fn changes(c: &Command) -> Option<Vec<Change>> {
    let service = c.service.as_ref().map(virtual_service);
    let server = || {
        let (addr, port) = c.server.unwrap_or((Ipv4Addr::UNSPECIFIED.into(), 0));
        ServerConfig {
            addr,
            port,
            forwarding: c.forwarding,
            weight: c.weight,
            upper_threshold: c.u_threshold,
            lower_threshold: c.l_threshold,
        }
    };
    let service_config = |vs: VirtualService| ServiceConfig {
        service: vs,
        scheduler: c.scheduler.clone(),
        persistence: c.persistent.map(|timeout| PersistenceConfig { timeout, netmask: c.netmask }),
        one_packet: c.one_packet,
        synproxy: c.synproxy,
        proxy_protocol: c.proxy_protocol,
    };
    let change = match (c.cmd, service) {
        (Cmd::Add, Some(vs)) => Change::AddService { service: service_config(vs) },
        (Cmd::Edit, Some(vs)) => Change::EditService { service: service_config(vs) },
        (Cmd::Del, Some(vs)) => Change::DeleteService { service: vs },
        (Cmd::Flush, _) => Change::Clear,
        (Cmd::AddDest, Some(vs)) => Change::AddServer { service: vs, server: server() },
        (Cmd::EditDest, Some(vs)) => Change::EditServer { service: vs, server: server() },
        (Cmd::DelDest, Some(vs)) => {
            let s = server();
            Change::DeleteServer { service: vs, addr: s.addr, port: s.port }
        }
        (Cmd::Timeout, _) => {
            let (tcp, tcp_fin, udp) = c.timeouts;
            Change::SetTimeouts { tcp, tcp_fin, udp }
        }
        (Cmd::StartDaemon, _) => Change::StartDaemon {
            daemon: SyncDaemonConfig {
                state: c.daemon_state?,
                mcast_interface: c.mcast_interface.clone(),
                syncid: c.syncid,
            },
        },
        (Cmd::StopDaemon, _) => Change::StopDaemon { state: c.daemon_state? },
        (Cmd::AddLaddr, Some(vs)) => Change::AddLaddr {
            service: vs,
            laddr: LaddrConfig { addr: c.laddr?, ifname: c.ifname.clone().unwrap_or_default() },
        },
        (Cmd::DelLaddr, Some(vs)) => Change::DeleteLaddr { service: vs, addr: c.laddr? },
        _ => return None,
    };
    Some(vec![change])
}

/// Splits a rule line into words; `#` starts a comment at the start of a word, single and
/// double quotes group words (as ipvsadm's config_stream does).
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for ch in line.chars() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => cur.push(ch),
            None if ch == '"' || ch == '\'' => {
                quote = Some(ch);
                in_word = true;
            }
            None if ch.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None if ch == '#' && !in_word => break,
            None => {
                cur.push(ch);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// One change read from a rule file, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// 1-based line number.
    pub line: usize,
    pub cmd: Cmd,
    pub change: Change,
}

/// A rule line that is not a valid change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub line: usize,
    /// The line as written, without its end of line.
    pub text: String,
    /// ipvsadm's message, when the line is a bad command line.
    pub usage: Option<UsageError>,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.usage.as_ref().and_then(|u| u.message.as_deref()) {
            Some(m) => write!(f, "line {}: {}: {m}", self.line, self.text),
            None => write!(f, "line {}: {} is not a rule", self.line, self.text),
        }
    }
}

impl std::error::Error for RuleError {}

/// Reads ipvsadm rules, the format `-S` prints and `-R` reads: one command line per line,
/// with or without a leading program name, blank lines and `#` comments allowed. Only
/// changes are rules (`-A -E -D -C -a -e -d --set -P -Q`, and `--start-daemon` and
/// `--stop-daemon`, which `-S` never prints, as ipvsadm).
pub fn parse_rules(text: &str, names: &Names) -> Result<Vec<Rule>, RuleError> {
    let mut rules = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut w = words(line);
        if w.first().is_some_and(|first| !first.starts_with('-')) {
            w.remove(0); // a leading program name: "ipvsadm -A ..."
        }
        if w.is_empty() {
            continue;
        }
        let error = |usage: Option<UsageError>| RuleError { line: i + 1, text: line.trim_end().to_string(), usage };
        let command = match parse(&w, names) {
            Ok((Action::Ipvs(c), _)) => c,
            Ok(_) => return Err(error(None)),
            Err(e) => return Err(error(Some(e))),
        };
        let Some(changes) = changes(&command) else {
            return Err(error(None));
        };
        rules.extend(changes.into_iter().map(|change| Rule { line: i + 1, cmd: command.cmd, change }));
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn cmd(s: &str) -> Command {
        match parse(&args(s), &Names::none()) {
            Ok((Action::Ipvs(c), _)) => *c,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn err(s: &str) -> String {
        match parse(&args(s), &Names::none()) {
            Err(e) => e.message.unwrap_or_default(),
            Ok(other) => panic!("{s}: parsed as {other:?}"),
        }
    }

    #[test]
    fn clusters_attached_values_and_optional_timeout() {
        let c = cmd("-lnc");
        assert_eq!(c.cmd, Cmd::List);
        assert!(c.format.numeric && c.options & opt::CONNECTION != 0);
        let c = cmd("-Ln --stats");
        assert!(c.format.stats && c.format.numeric);
        let c = cmd("-A -t 10.0.0.1:0 -srr -p");
        assert_eq!(c.scheduler, "rr");
        assert_eq!(c.persistent, Some(300));
        let c = cmd("-E -t 192.168.0.200:80 -s wlc -p 600 -M 255.255.255.0");
        assert_eq!(c.persistent, Some(600));
        assert_eq!(c.netmask, "255.255.255.0".parse::<IpAddr>().unwrap());
        let c = cmd("--add-service --tcp-service=10.0.0.1:80 --scheduler rr --persistent=60");
        assert_eq!(c.persistent, Some(60));
        let c = cmd("-a -t 192.168.0.200:80 -r 172.16.100.10 -m");
        assert_eq!(c.server, Some(("172.16.100.10".parse().unwrap(), 80)));
        let c = cmd("-a -t 192.168.0.200:80 -r 172.16.100.11:8080 -g");
        assert_eq!(c.server.unwrap().1, 80, "DR keeps the service port, as ipvsadm does");
        let c = cmd("-a -t [2001:db8::1]:80 -r [2001:db8::2]:8080 -b -w 3");
        assert_eq!(c.server, Some(("2001:db8::2".parse().unwrap(), 8080)));
        assert_eq!(c.forwarding, Forwarding::FullNat);
        let c = cmd("--set 900 120 300");
        assert_eq!(c.timeouts, (900, 120, 300));
    }

    #[test]
    fn rule_files_parse_with_comments_program_names_and_line_numbers() {
        let text = "# saved\n\nipvsadm -A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.1.1 -m # web1\n";
        let rules = parse_rules(text, &Names::none()).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!((rules[0].line, rules[0].cmd), (3, Cmd::Add));
        assert_eq!((rules[1].line, rules[1].cmd), (4, Cmd::AddDest));
        let err = parse_rules("-A -t 10.0.0.1:80\n-L -n\n", &Names::none()).unwrap_err();
        assert_eq!(err.to_string(), "line 2: -L -n is not a rule");
        let err = parse_rules("-A -t 10.0.0.1:80 -w 3\n", &Names::none()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: -A -t 10.0.0.1:80 -w 3: Illegal 'weight' option with the 'add-service' command"
        );
        assert_eq!(words("-F 'my if'"), vec!["-F", "my if"]);
    }

    #[test]
    fn ipvsadm_error_texts() {
        assert_eq!(err("-A -t 10.0.0.1:80 -D"), "multiple commands specified");
        assert_eq!(err("-A -t 10.0.0.1:80 -u 10.0.0.1:80"), "multiple 'service-address' options specified");
        assert_eq!(err("-A -s rr"), "You need to supply the 'service-address' option for the 'add-service' command");
        assert_eq!(err("-A -t 10.0.0.1:80 -r 1.2.3.4"), "Illegal 'real-server' option with the 'add-service' command");
        assert_eq!(
            err("-L -c --timeout"),
            "The option 'timeout' conflicts with the 'connection' option in the 'list' command"
        );
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 65536"), "illegal weight specified");
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.0.0.2 -w x"), "illegal weight specified");
        assert_eq!(err("-A -t 10.0.0.300:80"), "illegal virtual server address[:port] specified");
        assert_eq!(err("-a -t 10.0.0.1:80 -r 80"), "illegal real server address[:port] specified");
        assert_eq!(err("-A -f 0"), "invalid fwmark value `0' specified");
        assert_eq!(err("-A -t 10.0.0.1:80 -p 0"), "invalid timeout value `0' specified");
        assert_eq!(err("-A -t 10.0.0.1:80 -p 10 -M 255.0.x"), "illegal virtual server persistent mask specified");
        assert_eq!(err("-A -t 10.0.0.1"), "Zero port specified for non-persistent service");
        assert_eq!(err("-A -t 10.0.0.1:53 -o"), "One-Packet Scheduling is only for UDP virtual services");
        for line in ["-A -u 10.0.0.1:53 -o", "-E -u 10.0.0.1:53 -s rr --ops", "-A -f 7 -o"] {
            assert_eq!(err(line), "One-Packet Scheduling (-o) is not supported by this gateway", "{line}");
        }
        assert_eq!(err("--set 1 2"), "--set option requires 3 timeout values");
        assert_eq!(err("-L foo"), "unexpected argument foo");
        assert_eq!(err("--start-daemon primary"), "illegal start-daemon parameter specified");
        assert_eq!(err("-L --stats -c"), "options conflicts in the list command");
        assert_eq!(
            err("-P -t 10.0.0.1:80 -z 192.168.1.254"),
            "You need to supply the 'ifname' option for the 'add-laddr' command"
        );
        assert_eq!(err("-Lq"), "-q: unknown option");
        assert_eq!(err("--frobnicate"), "--frobnicate: unknown option");
        assert_eq!(err("-A -t"), "-t: missing argument");
    }

    /// IPv6 paths of ipvsadm's `parse_service`, `-M` and the family check (ipvsadm.c 1.31,
    /// `parse_options` and `process_options`).
    #[test]
    fn ipv6_addresses_prefix_lengths_and_families() {
        let c = cmd("-A -t [2001:db8::1]:80 -s rr -p 60 -M 64");
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            c.service,
            Some(ServiceArg::Inet { proto: TransportProtocol::Tcp, addr: v6("2001:db8::1"), port: 80 })
        );
        assert_eq!(c.netmask, v6("ffff:ffff:ffff:ffff::"));
        // The family is the service's, whatever the order of -M and -t (ipvsadm's depends on it).
        assert_eq!(cmd("-A -p 60 -M 64 -t [2001:db8::1]:80").netmask, v6("ffff:ffff:ffff:ffff::"));
        assert_eq!(cmd("-A -t [2001:db8::1]:80 -p").netmask, v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        assert_eq!(cmd("-A -f 7 -6 -p -M 48").netmask, v6("ffff:ffff:ffff::"));
        // A bare IPv6 address is a service without a port; a server without one takes the service's.
        assert_eq!(
            cmd("-A -u 2001:db8::53 -p").service,
            Some(ServiceArg::Inet { proto: TransportProtocol::Udp, addr: v6("2001:db8::53"), port: 0 })
        );
        assert_eq!(cmd("-a -t [2001:db8::1]:80 -r 2001:db8::10 -m").server, Some((v6("2001:db8::10"), 80)));
        assert_eq!(cmd("-a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m").server, Some((v6("2001:db8::10"), 8080)));
        // A tunnelled server of the other family passes ipvsadm's check (the gateway decides).
        assert_eq!(cmd("-a -t [2001:db8::1]:80 -r 10.0.0.2 -i").server, Some((v6("10.0.0.2"), 80)));
        // A fwmark service's servers may be of either family here.
        assert_eq!(cmd("-a -f 7 -r [2001:db8::10]:0 -g").server, Some((v6("2001:db8::10"), 0)));

        for bad in [
            "[2001:db8::1:80",
            "2001:db8::1]:80",
            "[2001:db8::1]",
            "[2001:db8::1]80",
            "[2001:db8::1]:",
            "[2001:db8::g]:80",
        ] {
            assert_eq!(err(&format!("-A -t {bad}")), "illegal virtual server address[:port] specified", "{bad}");
            assert_eq!(
                err(&format!("-a -t [2001:db8::1]:80 -r {bad} -m")),
                "illegal real server address[:port] specified",
                "{bad}"
            );
        }
        for mask in ["129", "0", "255.255.255.0", "ffff:ffff::", "x"] {
            assert_eq!(
                err(&format!("-A -t [2001:db8::1]:80 -p -M {mask}")),
                "illegal ipv6 netmask specified",
                "{mask}"
            );
        }
        assert_eq!(err("-A -f 7 -6 -p -M 129"), "illegal ipv6 netmask specified");
        let v4_prefix = "illegal virtual server persistent mask specified: `64' is a prefix length, which only an \
                         IPv6 service takes; an IPv4 service's mask is dotted (255.255.255.0)";
        assert_eq!(err("-A -t 10.0.0.1:80 -p -M 64"), v4_prefix);
        assert_eq!(err("-A -f 7 -p -M 64"), v4_prefix);
        let family = "Different address family is allowed only for tunneling servers";
        for line in [
            "-a -t [2001:db8::1]:80 -r 10.0.0.2 -m",
            "-a -t [2001:db8::1]:80 -r 10.0.0.2",
            "-e -u [2001:db8::1]:53 -r 10.0.0.2:53 -m",
            "-a -t 10.0.0.1:80 -r [2001:db8::10]:80 -m",
            "-a -t 10.0.0.1:80 -r 2001:db8::10 -g",
            "-e -t 10.0.0.1:80 -r [2001:db8::10]:80 -b -w 2",
        ] {
            assert_eq!(err(line), family, "{line}");
        }
        // NAT64: an IPv4 server of an IPv6 service in full NAT, as DPVS's ipvsadm takes it.
        assert_eq!(cmd("-a -t [2001:db8::1]:80 -r 10.0.0.2:8080 -b").server, Some(("10.0.0.2".parse().unwrap(), 8080)));
        // ipvsadm allows the persistence engine's columns in the connection listing.
        assert!(cmd("-L -c --persistent-conn").format.persistent_conn);
        assert_eq!(err("-L --timeout --persistent-conn"), "options conflicts in the list command");
    }
}
