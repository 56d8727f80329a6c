//! The control server on a real Unix socket, with worker threads polling their mailboxes the
//! way dataplane workers will: bad requests of every kind get their error, leave the
//! configuration unchanged, never stall the server, and the workers keep running and stay on
//! the configuration in force.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gateway::control::publish::broadcast;
use gateway::control::{ControlServer, ControlState, GatewayConfig, NoDataplane, ServerHandle, ServerOptions};
use gwapi::api::{Change, ErrorKind, Forwarding, Reply, Request, ServerConfig, ServiceConfig, VirtualService};
use gwapi::{Client, ClientError};

fn temp_socket(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gw-control-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("gatewayd.sock")
}

/// Two "workers" polling their mailboxes until stopped; each counts its polls (it is
/// forwarding) and records the generation it runs.
struct Workers {
    stop: Arc<AtomicBool>,
    polls: Vec<Arc<AtomicU64>>,
    generation: Vec<Arc<AtomicU64>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    fn running_generations(&self) -> Vec<u64> {
        self.generation.iter().map(|g| g.load(Ordering::SeqCst)).collect()
    }

    fn polls(&self) -> Vec<u64> {
        self.polls.iter().map(|p| p.load(Ordering::SeqCst)).collect()
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

fn start(name: &str, io_timeout: Duration) -> (ServerHandle, Client, Workers) {
    start_with(name, |options| options.io_timeout = io_timeout)
}

fn start_with(name: &str, set: impl FnOnce(&mut ServerOptions)) -> (ServerHandle, Client, Workers) {
    let initial = GatewayConfig::empty();
    let (sink, mailboxes) = broadcast(2, &initial, Duration::from_secs(5));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Workers { stop: stop.clone(), polls: vec![], generation: vec![], threads: vec![] };
    for mut mb in mailboxes {
        let (stop, polls, gen) = (stop.clone(), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        workers.polls.push(polls.clone());
        workers.generation.push(gen.clone());
        workers.threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                mb.poll(|config| gen.store(config.generation(), Ordering::SeqCst));
                polls.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(200));
            }
        }));
    }
    let state = ControlState::new(initial, Box::new(sink), Box::new(NoDataplane::default()));
    let mut options = ServerOptions::new(temp_socket(name));
    set(&mut options);
    let path = options.socket_path.clone();
    let server = ControlServer::bind(options, state).unwrap().spawn().unwrap();
    (server, Client::new(path), workers)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn web() -> VirtualService {
    VirtualService::Tcp { addr: ip("192.168.0.200"), port: 80 }
}

fn configure(client: &Client) {
    let changes = vec![
        Change::AddService {
            service: ServiceConfig {
                service: web(),
                scheduler: "rr".into(),
                persistence: None,
                one_packet: false,
                synproxy: false,
                proxy_protocol: None,
            },
        },
        Change::AddServer {
            service: web(),
            server: ServerConfig {
                addr: ip("172.16.100.10"),
                port: 80,
                forwarding: Forwarding::Masq,
                weight: 1,
                upper_threshold: 0,
                lower_threshold: 0,
            },
        },
    ];
    client.call(&Request::Apply { changes }).unwrap();
}

fn table(client: &Client) -> Reply {
    client.call(&Request::ListServices { service: None }).unwrap()
}

fn refused(result: Result<Reply, ClientError>) -> (ErrorKind, String) {
    match result {
        Err(ClientError::Refused(e)) => (e.kind, e.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn socket_is_private_and_replies_are_confirmed_by_every_worker() {
    let (server, client, workers) = start("private", Duration::from_secs(2));
    let mode = std::fs::metadata(server.socket_path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(server.socket_path().parent().unwrap()).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    configure(&client);
    // Applied means every worker switched: each confirms after its switch closure ran.
    assert_eq!(workers.running_generations(), vec![1, 1]);
    // A second server on the same path is refused; the first keeps serving.
    let state = ControlState::new(
        GatewayConfig::empty(),
        Box::new(gateway::control::NoWorkers),
        Box::new(NoDataplane::default()),
    );
    let err = ControlServer::bind(ServerOptions::new(server.socket_path()), state).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(matches!(table(&client), Reply::Services(_)));
    workers.stop();
    let path = server.socket_path().to_path_buf();
    server.shutdown().unwrap();
    assert!(!path.exists(), "the socket file is removed at shutdown");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn bad_requests_get_their_error_and_change_nothing() {
    let (server, client, workers) = start("bad", Duration::from_millis(300));
    configure(&client);
    let before = table(&client);
    let generation = workers.running_generations();

    let cases: Vec<(Vec<u8>, ErrorKind, &str)> = vec![
        (b"\x00\x01\x02garbage\xff\n".to_vec(), ErrorKind::Malformed, "request is not valid JSON"),
        (
            b"{\"version\":1,\"request\":{\"command\":\"apply\",\"changes\":[{\"change\":\"add_server\"}]}}\n".to_vec(),
            ErrorKind::Malformed,
            "invalid \"apply\" request",
        ),
        (
            b"{\"version\":7,\"request\":{\"command\":\"info\"}}\n".to_vec(),
            ErrorKind::UnsupportedVersion,
            "protocol version 7 is not supported",
        ),
        (
            b"{\"version\":1,\"request\":{\"command\":\"format_disk\"}}\n".to_vec(),
            ErrorKind::UnknownCommand,
            "unknown command \"format_disk\"",
        ),
        // 10 MB: refused after the first 4 MiB, without reading the rest.
        (vec![b'x'; 10 << 20], ErrorKind::TooLarge, "request is larger than 4194304 bytes"),
    ];
    for (frame, kind, prefix) in cases {
        let (k, message) = refused(client.call_raw(&frame));
        assert_eq!(k, kind, "{message}");
        assert!(message.starts_with(prefix), "{message:?} should start with {prefix:?}");
    }

    // Model-level refusals.
    let dup = Request::Apply {
        changes: vec![Change::AddServer {
            service: web(),
            server: ServerConfig {
                addr: ip("172.16.100.10"),
                port: 80,
                forwarding: Forwarding::Masq,
                weight: 1,
                upper_threshold: 0,
                lower_threshold: 0,
            },
        }],
    };
    assert_eq!(
        refused(client.call(&dup)),
        (ErrorKind::DestExists, "real server 172.16.100.10:80 already exists in service TCP 192.168.0.200:80".into())
    );
    let missing = Request::Apply {
        changes: vec![Change::DeleteService { service: VirtualService::Udp { addr: ip("10.0.0.1"), port: 53 } }],
    };
    assert_eq!(
        refused(client.call(&missing)),
        (ErrorKind::ServiceNotFound, "service UDP 10.0.0.1:53 not defined".into())
    );

    // A client that connects and sends nothing: it gets a timeout error, and meanwhile the
    // server still answers once it gives up on it.
    let t = Instant::now();
    let mut silent = UnixStream::connect(server.socket_path()).unwrap();
    let other = {
        let client = client.clone();
        std::thread::spawn(move || client.call(&Request::GetTimeouts))
    };
    let mut reply = String::new();
    silent.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("\"kind\":\"timeout\""), "{reply}");
    assert!(reply.contains("no complete request within 300 ms"), "{reply}");
    assert!(matches!(other.join().unwrap().unwrap(), Reply::Timeouts(_)));
    assert!(t.elapsed() < Duration::from_secs(5));

    // A client that trickles a byte at a time is cut off at the same deadline.
    let mut slow = UnixStream::connect(server.socket_path()).unwrap();
    let t = Instant::now();
    for _ in 0..20 {
        if slow.write_all(b" ").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut reply = String::new();
    let _ = slow.read_to_string(&mut reply);
    assert!(reply.contains("\"kind\":\"timeout\""), "{reply}");
    assert!(t.elapsed() < Duration::from_secs(3));

    // A client that connects and closes at once gets nothing and costs nothing.
    drop(UnixStream::connect(server.socket_path()).unwrap());

    assert_eq!(table(&client), before, "the table is unchanged");
    assert_eq!(workers.running_generations(), generation, "workers run the same configuration");
    let polls = workers.polls();
    std::thread::sleep(Duration::from_millis(300));
    assert!(workers.polls().iter().zip(&polls).all(|(now, then)| now > then), "workers keep running");
    workers.stop();
    let dir = server.socket_path().parent().unwrap().to_path_buf();
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_regular_file_is_not() {
    let path = temp_socket("stale");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // a dead daemon's socket
    let state = || {
        ControlState::new(
            GatewayConfig::empty(),
            Box::new(gateway::control::NoWorkers),
            Box::new(NoDataplane::default()),
        )
    };
    let server = ControlServer::bind(ServerOptions::new(&path), state()).unwrap().spawn().unwrap();
    assert!(matches!(Client::new(&path).call(&Request::Info).unwrap(), Reply::Info(_)));
    server.shutdown();
    std::fs::write(&path, b"not a socket").unwrap();
    let err = ControlServer::bind(ServerOptions::new(&path), state()).err().unwrap();
    assert_eq!(err.to_string(), format!("{} exists and is not a socket", path.display()));
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Whether the server still serves `stream`: a refused connection has its refusal (or the
/// end of the stream) to read at once, a served silent one has nothing.
fn still_served(stream: &UnixStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let served = matches!((&*stream).read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    served
}

/// Connects silent clients until `held` has `count` of them, each served, and returns how long
/// the refusal that proves the server is full took and what it said. A client thread ends a
/// moment after its reply is sent, so a connection made just after an answered call may be
/// refused while that thread is still counted, and a request may be refused as busy while it
/// is. The server accepts in order on one thread: once a request is answered or refused,
/// every connection made before it has been admitted or refused. So the proof is a refusal
/// with every held client still served; the refused ones are replaced until it comes.
fn hold_slots(
    server: &ServerHandle,
    client: &Client,
    held: &mut Vec<UnixStream>,
    count: usize,
) -> (Duration, ErrorKind, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        while held.len() < count {
            held.push(UnixStream::connect(server.socket_path()).unwrap());
        }
        let t = Instant::now();
        let result = client.call(&Request::Info);
        let took = t.elapsed();
        let before = held.len();
        held.retain(still_served);
        match result {
            Err(ClientError::Refused(e)) if held.len() == before => return (took, e.kind, e.message),
            Ok(_) | Err(ClientError::Refused(_)) if Instant::now() < deadline => {}
            other => panic!("expected {count} clients held and a refusal, got {other:?}"),
        }
    }
}

/// Stalled clients each hold only their own connection: another client's request is answered
/// at once, and a client over the bound is refused at once with a clear error.
#[test]
fn stalled_clients_delay_nobody_and_one_over_the_bound_is_told_so() {
    // The default 5 s deadline: served one at a time, 11 stalled clients would hold a
    // listing for 55 s.
    let (server, client, workers) = start_with("stalled", |o| o.max_clients = 12);
    configure(&client);
    let busy = "gatewayd is busy: 12 control clients are being served, the most it serves at once; try again";
    // All twelve slots taken: the next client is refused at once, saying why.
    let mut stalled = Vec::new();
    let (took, kind, message) = hold_slots(&server, &client, &mut stalled, 12);
    assert_eq!((kind, message.as_str()), (ErrorKind::Busy, busy));
    assert!(took < Duration::from_secs(1), "refused in {took:?}");
    // One of them sends half a request and stalls.
    let mut half = stalled.pop().unwrap();
    half.write_all(b"{\"version\":1,\"requ").unwrap();
    let t = Instant::now();
    // Free a slot by closing one of the silent ones.
    drop(stalled.pop());
    // Its thread ends a moment after it sees the close, so the slot freed above (and the one
    // each call below uses) may still be counted for that moment: retry on Busy.
    let call_when_free = |request: Request| {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match client.call(&request) {
                Err(ClientError::Refused(e)) if e.kind == ErrorKind::Busy && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                other => break other.unwrap(),
            }
        }
    };
    assert!(matches!(call_when_free(Request::ListServices { service: None }), Reply::Services(_)));
    assert!(t.elapsed() < Duration::from_secs(2), "answered in {:?}", t.elapsed());
    // A change is applied and confirmed while the others stall.
    let t = Instant::now();
    call_when_free(Request::Apply { changes: vec![Change::DeleteService { service: web() }] });
    assert!(t.elapsed() < Duration::from_secs(2), "applied in {:?}", t.elapsed());

    // The slot taken again (`half` holds the twelfth until its deadline, 5 s after it
    // connected): the bound holds after clients came and went.
    let (took, kind, message) = hold_slots(&server, &client, &mut stalled, 11);
    assert_eq!((kind, message.as_str()), (ErrorKind::Busy, busy));
    assert!(took < Duration::from_secs(1), "refused in {took:?}");

    // The stalled ones get their own timeout; `half` its error, at its own deadline.
    let mut reply = String::new();
    half.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("no complete request within 5000 ms"), "{reply}");
    drop(stalled);
    workers.stop();
    let dir = server.socket_path().parent().unwrap().to_path_buf();
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

fn server_change(i: u32, weight: u32) -> Change {
    Change::AddServer {
        service: web(),
        server: ServerConfig {
            addr: IpAddr::V4(std::net::Ipv4Addr::from(0xac10_0000 + i)),
            port: 80,
            forwarding: Forwarding::Masq,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
        },
    }
}

/// A streamed apply is one transaction: it is applied whole, and a stream that ends early,
/// holds a bad change, claims too many or stalls changes nothing and names the change.
#[test]
fn a_streamed_apply_is_all_or_nothing() {
    let (server, client, workers) = start("stream", Duration::from_millis(300));
    let add_service = Change::AddService {
        service: ServiceConfig {
            service: web(),
            scheduler: "wrr".into(),
            persistence: None,
            one_packet: false,
            synproxy: false,
            proxy_protocol: None,
        },
    };
    let mut changes = vec![add_service];
    changes.extend((1..=3).map(|i| server_change(i, i)));
    let reply = client.apply_streamed(&changes).unwrap();
    assert!(matches!(reply, Reply::Applied { generation: 1 }), "{reply:?}");
    let Reply::Services(t) = table(&client) else { panic!() };
    assert_eq!(t.services[0].servers.len(), 3);
    let before = table(&client);

    // Ends early: two of three changes, then the client closes.
    let mut frame =
        gwapi::protocol::encode_apply_stream(&[server_change(10, 1), server_change(11, 1), server_change(12, 1)]);
    let cut = frame.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(2).unwrap().0 + 1;
    frame.truncate(cut);
    let err = match client.call_raw(&frame) {
        Err(ClientError::Refused(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (err.kind, err.message.as_str(), err.change_index),
        (ErrorKind::Malformed, "the stream ended after 2 of its 3 changes; nothing was applied", Some(2))
    );
    // A change the model refuses at the very end.
    let mut big: Vec<Change> = (100..5100).map(|i| server_change(i, 1)).collect();
    big.push(server_change(1, 1));
    let (kind, message) = refused(client.apply_streamed(&big));
    assert_eq!(
        (kind, message.as_str()),
        (ErrorKind::DestExists, "real server 172.16.0.1:80 already exists in service TCP 192.168.0.200:80")
    );
    // A line that is not a change.
    let mut frame = gwapi::protocol::encode_request(&Request::ApplyStream { changes: 2 });
    frame.extend_from_slice(&serde_json::to_vec(&server_change(20, 1)).unwrap());
    frame.extend_from_slice(b"\n{\"change\":\"reboot\"}\n");
    let err = match client.call_raw(&frame) {
        Err(ClientError::Refused(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!((err.kind, err.change_index), (ErrorKind::Malformed, Some(1)));
    assert!(err.message.starts_with("invalid change 1 of the stream: unknown variant `reboot`"), "{}", err.message);
    // More changes than any stream may hold.
    let (kind, message) =
        refused(client.call_raw(b"{\"version\":1,\"request\":{\"command\":\"apply_stream\",\"changes\":10000001}}\n"));
    assert_eq!(
        (kind, message.as_str()),
        (ErrorKind::TooLarge, "a streamed apply holds at most 10000000 changes, not 10000001")
    );
    // A stream that stalls after its first change is cut off at that change's deadline.
    let mut stalled = UnixStream::connect(server.socket_path()).unwrap();
    let frame = gwapi::protocol::encode_apply_stream(&[server_change(30, 1), server_change(31, 1)]);
    let first_change_end = frame.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(1).unwrap().0 + 1;
    stalled.write_all(&frame[..first_change_end]).unwrap();
    let t = Instant::now();
    let mut reply = String::new();
    stalled.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("no complete request within 300 ms") && reply.contains("\"change_index\":1"), "{reply}");
    assert!(t.elapsed() < Duration::from_secs(3));

    assert_eq!(table(&client), before, "nothing of the refused streams was applied");
    workers.stop();
    let dir = server.socket_path().parent().unwrap().to_path_buf();
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}
