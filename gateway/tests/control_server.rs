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

use gateway::control::api::{
    Change, ErrorKind, Forwarding, Reply, Request, ServerConfig, ServiceConfig, VirtualService,
};
use gateway::control::publish::broadcast;
use gateway::control::{
    Client, ClientError, ControlServer, ControlState, GatewayConfig, NoDataplane, ServerHandle,
    ServerOptions,
};

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
        self.generation
            .iter()
            .map(|g| g.load(Ordering::SeqCst))
            .collect()
    }

    fn polls(&self) -> Vec<u64> {
        self.polls
            .iter()
            .map(|p| p.load(Ordering::SeqCst))
            .collect()
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

fn start(name: &str, io_timeout: Duration) -> (ServerHandle, Client, Workers) {
    let initial = GatewayConfig::empty();
    let (sink, mailboxes) = broadcast(2, &initial, Duration::from_secs(5));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Workers {
        stop: stop.clone(),
        polls: vec![],
        generation: vec![],
        threads: vec![],
    };
    for mut mb in mailboxes {
        let (stop, polls, gen) = (
            stop.clone(),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
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
    options.io_timeout = io_timeout;
    let path = options.socket_path.clone();
    let server = ControlServer::bind(options, state)
        .unwrap()
        .spawn()
        .unwrap();
    (server, Client::new(path), workers)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn web() -> VirtualService {
    VirtualService::Tcp {
        addr: ip("192.168.0.200"),
        port: 80,
    }
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
    client
        .call(&Request::ListServices { service: None })
        .unwrap()
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
    let mode = std::fs::metadata(server.socket_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(server.socket_path().parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
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
    let err = ControlServer::bind(ServerOptions::new(server.socket_path()), state)
        .err()
        .unwrap();
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
        (b"{\"version\":1,\"request\":{\"command\":\"apply\",\"changes\":[{\"change\":\"add_server\"}]}}\n".to_vec(), ErrorKind::Malformed, "invalid \"apply\" request"),
        (b"{\"version\":7,\"request\":{\"command\":\"info\"}}\n".to_vec(), ErrorKind::UnsupportedVersion, "protocol version 7 is not supported"),
        (b"{\"version\":1,\"request\":{\"command\":\"format_disk\"}}\n".to_vec(), ErrorKind::UnknownCommand, "unknown command \"format_disk\""),
        // 10 MB: refused after the first 4 MiB, without reading the rest.
        (vec![b'x'; 10 << 20], ErrorKind::TooLarge, "request is larger than 4194304 bytes"),
    ];
    for (frame, kind, prefix) in cases {
        let (k, message) = refused(client.call_raw(&frame));
        assert_eq!(k, kind, "{message}");
        assert!(
            message.starts_with(prefix),
            "{message:?} should start with {prefix:?}"
        );
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
        (
            ErrorKind::DestExists,
            "real server 172.16.100.10:80 already exists in service TCP 192.168.0.200:80".into()
        )
    );
    let missing = Request::Apply {
        changes: vec![Change::DeleteService {
            service: VirtualService::Udp {
                addr: ip("10.0.0.1"),
                port: 53,
            },
        }],
    };
    assert_eq!(
        refused(client.call(&missing)),
        (
            ErrorKind::ServiceNotFound,
            "service UDP 10.0.0.1:53 not defined".into()
        )
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
    assert!(
        reply.contains("no complete request within 300 ms"),
        "{reply}"
    );
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
    assert_eq!(
        workers.running_generations(),
        generation,
        "workers run the same configuration"
    );
    let polls = workers.polls();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        workers
            .polls()
            .iter()
            .zip(&polls)
            .all(|(now, then)| now > then),
        "workers keep running"
    );
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
    let server = ControlServer::bind(ServerOptions::new(&path), state())
        .unwrap()
        .spawn()
        .unwrap();
    assert!(matches!(
        Client::new(&path).call(&Request::Info).unwrap(),
        Reply::Info(_)
    ));
    server.shutdown();
    std::fs::write(&path, b"not a socket").unwrap();
    let err = ControlServer::bind(ServerOptions::new(&path), state())
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!("{} exists and is not a socket", path.display())
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
