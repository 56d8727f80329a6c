//! The ipvsadm-compatible half of gwctl: parse an ipvsadm command line, turn it into a
//! control request, print the reply the way ipvsadm prints its own.
//!
//! Exit status: 0 on success, 1 when the gateway refused the request, 2 for command-line
//! errors and when the gateway cannot be reached.

pub use gwapi::cmdline as args;
pub mod format;

use gwapi::api::{ApiError, ErrorKind, Reply, Request};
use gwapi::{Client, ClientError};

use crate::names::Names;
use crate::Io;
use args::{changes, opt, virtual_service, Action, Cmd, Command, Globals, UsageError};

/// The help text, in ipvsadm's layout, with the extensions.
pub fn usage() -> String {
    let p = "gwctl";
    format!(
        "{version}\
Usage:
  {p} -A|E -t|u|f service-address [-s scheduler] [-p [timeout]] [-M netmask] [-o] [-j enable|disable]
  {p} -D -t|u|f service-address
  {p} -C
  {p} -R
  {p} -S [-n]
  {p} -a|e -t|u|f service-address -r server-address [options]
  {p} -d -t|u|f service-address -r server-address
  {p} -L|l [options]
  {p} -Z [-t|u|f service-address]
  {p} --set tcp tcpfin udp
  {p} --start-daemon state [--mcast-interface interface] [--syncid sid]
  {p} --stop-daemon state
  {p} -P|Q -t|u|f service-address -z local-address [-F ifname]
  {p} -G -t|u|f service-address
  {p} --health -t|u|f service-address [-r server-address] --check tcp|http|https|udp|misc [check options]
  {p} --health -D -t|u|f service-address [-r server-address]
  {p} --health -t|u|f service-address --passive [--passive-failures n] [--passive-backoff s[:max]]
  {p} --health -D -t|u|f service-address --passive
  {p} --health -L [--json]
  {p} import-keepalived FILE [--dry-run]
  {p} addr|route|neigh|link|stats|mark ...   (gateway management, see below)
  {p} -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --add-laddr       -P        add local address of a fullnat service
  --del-laddr       -Q        delete local address of a fullnat service
  --get-laddr       -G        list local addresses of a fullnat service
  --help            -h        display this help message

Options:
  --tcp-service  -t service-address   service-address is host[:port]
  --udp-service  -u service-address   service-address is host[:port]
  --fwmark-service  -f fwmark         fwmark is an integer greater than zero
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos,
                                      the default scheduler is wlc.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --fullnat      -b                   full NAT (source and destination rewritten)
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --laddr        -z local-address     local address of a fullnat service
  --ifname       -F ifname            interface that owns the local address
  --synproxy     -j enable|disable    SYN proxy for a TCP service
  --proxy-protocol v1|v2              client address in a PROXY header (TCP, FNAT/NAT)
  --mcast-interface interface         multicast interface for connection sync
  --syncid sid                        syncid for connection sync (default=255)
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling (refused: not supported)
  --numeric      -n                   numeric output of addresses and ports
  --json                              print listings as JSON, for automation
  --socket PATH                       control socket (default $GATEWAYD_SOCKET, else {default})

Health checks (--health; keepalived's checkers and timing, durations in seconds):
  --check tcp|http|https|udp|misc     what a probe asks of the server
  --url /path  --host NAME            http, https: the page and its Host header (and SNI)
  --status CODE  --digest MD5         http, https: expected status (200) and body digest
                                      (genhash's); https: certificate not verified
  --payload TEXT  --expect TEXT       udp: datagram sent, text the reply must contain
  --script PATH  --dynamic            misc: run with the server in its environment; with
                                      --dynamic exit 2..255 is up with weight exit-2
  --delay-loop S (60)  --connect-timeout S (5)  --retry N (1; misc 0)
  --delay-before-retry S (1)  --rise N (1)  --on-failure inhibit|remove (inhibit)
  --passive                           passive detection of failing servers (per service, off)
  --passive-failures N (3)            new connections failed in a row that inhibit a server
  --passive-backoff S[:MAX] (5:300)   inhibition, doubled on each repeat up to MAX

Migration from keepalived:
  {p} import-keepalived FILE [--dry-run]   apply a keepalived.conf's virtual_server blocks as
                                      services, servers and checks, all or nothing; --dry-run
                                      prints the ipvsadm rules and --health lines instead

Gateway management:
  {p} addr  add|del ADDR/LEN dev IFNAME     {p} addr show
  {p} route add|del PREFIX [via GW] dev IFNAME   {p} route show
  {p} neigh add ADDR lladdr MAC dev IFNAME   {p} neigh del ADDR dev IFNAME   {p} neigh show
  {p} link show                            (port and queue counters)
  {p} stats                                (per-worker packet and drop counters)
  {p} sync                                 (connection sync: the daemons and their counters)
  {p} mark  add MARK -d PREFIX [-p tcp|udp] [--dports P[,LO-HI]...]   {p} mark del MARK   {p} mark show
  {p} addr|route|neigh|link|stats|sync|mark|import-keepalived|completions --help   (each one's own help)
  {p} completions bash|zsh|fish|elvish|powershell   (shell completion script)
",
        version = version(),
        default = gwapi::DEFAULT_SOCKET_PATH,
    )
}

pub fn version() -> String {
    format!("gwctl v{} (ipvsadm 1.31 compatible, IPVS v{})\n", env!("CARGO_PKG_VERSION"), gwapi::api::IPVS_VERSION)
}

pub(crate) fn try_help() -> &'static str {
    "Try `gwctl -h' or 'gwctl --help' for more information.\n"
}

/// Prints a usage error; returns the exit status.
pub fn usage_error(e: &UsageError, io: &mut Io) -> i32 {
    if let Some(m) = &e.message {
        let _ = writeln!(io.err, "{m}");
    }
    if e.try_help {
        let _ = io.err.write_all(try_help().as_bytes());
    }
    2
}

/// Runs one ipvsadm command line (without the program name).
pub fn run(args: &[String], io: &mut Io) -> i32 {
    let names = crate::names::from_env();
    let parsed = if args.is_empty() {
        // `ipvsadm` alone lists the table.
        args::parse(&["-L".to_string()], &names)
    } else {
        args::parse(args, &names)
    };
    let (action, globals) = match parsed {
        Ok(p) => p,
        Err(e) => return usage_error(&e, io),
    };
    match action {
        Action::Help => {
            let _ = io.out.write_all(usage().as_bytes());
            0
        }
        Action::Version => {
            let _ = io.out.write_all(version().as_bytes());
            0
        }
        Action::Ipvs(c) => {
            let client = crate::client(&globals);
            execute(&c, &globals, &client, &names, io)
        }
        Action::Health(c) => crate::health::run(&c, &globals, io),
    }
}

/// ipvsadm's text for a refusal (`ipvs_strerror`), where it has one; otherwise the
/// gateway's own message, which names the offending value.
pub fn refusal_text(cmd: Cmd, e: &ApiError) -> String {
    match e.kind {
        ErrorKind::ServiceExists => "Service already exists".into(),
        ErrorKind::SchedulerNotFound => "Scheduler not found".into(),
        ErrorKind::ServiceNotFound => match cmd {
            Cmd::AddDest | Cmd::EditDest | Cmd::DelDest | Cmd::AddLaddr | Cmd::DelLaddr => "Service not defined".into(),
            _ => "No such service".into(),
        },
        ErrorKind::DestExists => "Destination already exists".into(),
        ErrorKind::DestNotFound => "No such destination".into(),
        ErrorKind::PermissionDenied => "Permission denied (you must be root)".into(),
        ErrorKind::DaemonRunning => "Daemon has already run".into(),
        ErrorKind::DaemonNotRunning => "No daemon is running".into(),
        ErrorKind::NoDevice => "No such device".into(),
        _ => e.message.clone(),
    }
}

/// Prints a client error; returns the exit status.
pub fn client_error(cmd: Cmd, e: &ClientError, io: &mut Io) -> i32 {
    match e {
        ClientError::Refused(api) => {
            let _ = writeln!(io.err, "{}", refusal_text(cmd, api));
            1
        }
        other => {
            let _ = writeln!(io.err, "gwctl: {other}");
            2
        }
    }
}

fn print_json(reply: &Reply, io: &mut Io) -> i32 {
    match serde_json::to_string_pretty(reply) {
        Ok(s) => {
            let _ = writeln!(io.out, "{s}");
            0
        }
        Err(e) => {
            let _ = writeln!(io.err, "gwctl: cannot print the reply as JSON: {e}");
            1
        }
    }
}

fn execute(c: &Command, globals: &Globals, client: &Client, names: &Names, io: &mut Io) -> i32 {
    let call = |req: Request, io: &mut Io| -> Result<Reply, i32> {
        client.call(&req).map_err(|e| client_error(c.cmd, &e, io))
    };
    let listing = |req: Request, io: &mut Io, show: &dyn Fn(&Reply) -> Option<String>| -> i32 {
        let reply = match call(req, io) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let code = if globals.json {
            print_json(&reply, io)
        } else {
            match show(&reply) {
                Some(text) => {
                    let _ = io.out.write_all(text.as_bytes());
                    0
                }
                None => {
                    let _ = writeln!(io.err, "gwctl: unexpected reply from gatewayd: {reply:?}");
                    1
                }
            }
        };
        // What is listed is printed as ipvsadm prints it; what is missing is said after it,
        // and the status says the listing is not whole.
        match &reply {
            Reply::Connections { incomplete, .. } if !incomplete.is_empty() => {
                for reason in incomplete {
                    let _ = writeln!(io.err, "gwctl: the connection listing is incomplete: {reason}");
                }
                1
            }
            _ => code,
        }
    };
    let fmt = c.format;
    match c.cmd {
        Cmd::List => {
            if c.options & opt::CONNECTION != 0 {
                listing(Request::ListConnections, io, &|r| match r {
                    Reply::Connections { connections, .. } => Some(format::list_connections(connections, &fmt, names)),
                    _ => None,
                })
            } else if let Some(s) = &c.service {
                listing(Request::ListServices { service: Some(virtual_service(s)) }, io, &|r| match r {
                    Reply::Services(t) => t.services.first().map(|svc| format::list_service(svc, &fmt, names)),
                    _ => None,
                })
            } else if c.options & opt::TIMEOUT != 0 {
                listing(Request::GetTimeouts, io, &|r| match r {
                    Reply::Timeouts(t) => Some(format::timeouts(t)),
                    _ => None,
                })
            } else if c.options & opt::DAEMON != 0 {
                listing(Request::ListDaemons, io, &|r| match r {
                    Reply::Daemons(info) => Some(format::daemons(&info.daemons)),
                    _ => None,
                })
            } else {
                listing(Request::ListServices { service: None }, io, &|r| match r {
                    Reply::Services(t) => Some(format::list_all(t, &fmt, names)),
                    _ => None,
                })
            }
        }
        Cmd::Save => listing(Request::ListServices { service: None }, io, &|r| match r {
            Reply::Services(t) => Some(format::list_all(t, &fmt, names)),
            _ => None,
        }),
        Cmd::GetLaddr => {
            let Some(s) = &c.service else { return 2 };
            listing(Request::ListLaddrs { service: virtual_service(s) }, io, &|r| match r {
                Reply::Laddrs { service, laddrs } => Some(format::laddrs(service, laddrs)),
                _ => None,
            })
        }
        Cmd::Zero => match call(Request::Zero { service: c.service.as_ref().map(virtual_service) }, io) {
            Ok(reply) if globals.json => print_json(&reply, io),
            Ok(_) => 0,
            Err(code) => code,
        },
        Cmd::Restore => restore(client, names, io),
        _ => {
            let Some(changes) = changes(c) else {
                let _ = writeln!(io.err, "gwctl: internal error: the '{:?}' command has no change", c.cmd);
                return 1;
            };
            match call(Request::Apply { changes }, io) {
                // Automation gets the generation every worker now runs.
                Ok(reply) if globals.json => print_json(&reply, io),
                Ok(_) => 0,
                Err(code) => code,
            }
        }
    }
}

/// `-R`: reads every rule from stdin, then applies them all at once. Unlike ipvsadm, which
/// applies line by line and stops at the first bad one, a bad line here changes nothing.
/// A rule file too large for one request frame is streamed ([`Client::apply_streamed`]),
/// still one transaction; a small one goes as a plain apply, which any gatewayd speaks.
fn restore(client: &Client, names: &Names, io: &mut Io) -> i32 {
    let mut text = String::new();
    if let Err(e) = io.input.read_to_string(&mut text) {
        let _ = writeln!(io.err, "gwctl: cannot read rules from stdin: {e}");
        return 2;
    }
    let rules = match args::parse_rules(&text, names) {
        Ok(r) => r,
        Err(e) => {
            match e.usage.as_ref().and_then(|u| u.message.as_deref()) {
                Some(m) => {
                    let _ = writeln!(io.err, "{m}");
                    let _ = writeln!(io.err, "line {}: {}; nothing was restored", e.line, e.text);
                }
                None => {
                    let _ = writeln!(io.err, "line {}: {} is not a rule; nothing was restored", e.line, e.text);
                }
            }
            return 2;
        }
    };
    if rules.is_empty() {
        return 0;
    }
    let origin: Vec<(usize, Cmd)> = rules.iter().map(|r| (r.line, r.cmd)).collect();
    let changes: Vec<_> = rules.into_iter().map(|r| r.change).collect();
    let request = Request::Apply { changes };
    let frame = gwapi::protocol::encode_request(&request);
    let applied = match &request {
        Request::Apply { changes } if frame.len() > gwapi::api::MAX_REQUEST_BYTES => client.apply_streamed(changes),
        _ => client.call_raw(&frame),
    };
    match applied {
        Ok(_) => 0,
        Err(ClientError::Refused(e)) => {
            let (line, cmd) = e.change_index.and_then(|i| origin.get(i).copied()).unwrap_or((0, Cmd::Restore));
            let _ = writeln!(io.err, "{}", refusal_text(cmd, &e));
            let _ = writeln!(io.err, "line {line}: {}; nothing was restored", e.message);
            1
        }
        Err(e) => client_error(Cmd::Restore, &e, io),
    }
}
