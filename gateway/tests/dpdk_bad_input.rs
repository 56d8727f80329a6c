//! Bad EAL arguments, missing devices and misuse give errors, never a crash.
//! One process, one EAL: the failed inits come first (DPDK allows a retry
//! after an argument error), then one good init and the misuse cases.
#![cfg(feature = "dpdk")]

mod common;

use gateway::dpdk::{DpdkError, Eal, Mempool, Port, PortConfig, Ring, RingSync};

#[test]
fn bad_input_gives_errors_not_crashes() {
    // An option EAL does not know.
    match Eal::init(&["--no-such-eal-option"]) {
        Err(DpdkError::EalInit { code, reason, .. }) => {
            assert_eq!(code, 22, "EINVAL");
            assert_eq!(reason, "Invalid argument");
        }
        other => panic!("expected an EAL init error, got {:?}", other.err()),
    }
    // A malformed lcore list.
    assert!(matches!(Eal::init(&["-l", "zero-one"]), Err(DpdkError::EalInit { .. })));
    // A device whose driver does not exist.
    match Eal::init(&["--no-huge", "--no-shconf", "--vdev=net_no_such_driver0"]) {
        Err(DpdkError::EalInit { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("expected an EAL init error, got {:?}", other.err()),
    }
    // A NUL byte cannot reach C.
    assert_eq!(
        Eal::init(&["--vdev=net_ring0\0"]).err(),
        Some(DpdkError::NulInArgument { arg: "--vdev=net_ring0\0".into() })
    );

    let mut args = common::base_args("gw_test_bad");
    args.extend(["--no-huge".into(), "--no-shconf".into()]);
    args.push(format!("--vdev=net_tap0,iface=gwt{:05}q", std::process::id() % 100_000));
    let eal = Eal::init(&args).expect("a good init after failed ones");
    assert_eq!(Eal::init(&args).err(), Some(DpdkError::EalAlreadyInitialized));

    let pool = Mempool::new(&eal, "bad_pool", 1023, 0, 2176).expect("mempool");

    // A device that was never given to the EAL.
    let err = Port::open(&eal, "net_ring9", &PortConfig::default(), &pool).err().expect("no such port");
    assert_eq!(err, DpdkError::PortNotFound { name: "net_ring9".into() });
    assert_eq!(err.to_string(), "no DPDK port named \"net_ring9\" (is the device given to the EAL?)");

    // More queues than the device has.
    let config = PortConfig { rx_queues: 1000, ..PortConfig::default() };
    match Port::open(&eal, "net_ring0", &config, &pool) {
        Err(DpdkError::PortUnsupported { what, .. }) => assert!(what.starts_with("1000 rx queues asked"), "{what}"),
        other => panic!("expected PortUnsupported, got {:?}", other.err()),
    }
    let config = PortConfig { tx_queues: 0, ..PortConfig::default() };
    assert!(matches!(Port::open(&eal, "net_ring0", &config, &pool), Err(DpdkError::PortUnsupported { .. })));
    // The refused configurations left the port usable.
    let (port, _rx, _tx) = Port::open(&eal, "net_ring0", &PortConfig::default(), &pool).expect("open after refusals");
    drop((port, _rx, _tx));

    // A multi-queue tap takes our RSS key but has no redirection table to
    // report, so reply steering cannot be predicted: software redirect it is.
    let tap = format!("gwt{:05}q", std::process::id() % 100_000);
    let (port, _rx, _tx) = {
        let config = PortConfig { rx_queues: 2, tx_queues: 2, rx_descriptors: 128, ..PortConfig::default() };
        Port::open(&eal, "net_tap0", &config, &pool).expect("open a 2-queue tap")
    };
    assert!(std::path::Path::new(&format!("/sys/class/net/{tap}")).exists(), "the tap {tap} exists");
    assert_eq!(port.caps().rss_key, Some(gateway::net::rss::DEFAULT_KEY));
    assert_eq!(port.reta(), None);
    assert!(port.reply_steering().is_none());
    drop((port, _rx, _tx));

    // Names longer than DPDK's fields, duplicate names, bad ring sizes.
    let long = "p".repeat(40);
    assert!(matches!(Mempool::new(&eal, &long, 63, 0, 2176), Err(DpdkError::NameTooLong { max: 25, .. })));
    match Mempool::new(&eal, "bad_pool", 63, 0, 2176) {
        Err(DpdkError::Mempool { name, code, .. }) => assert_eq!((name.as_str(), code), ("bad_pool", 17), "EEXIST"),
        other => panic!("expected a duplicate-name error, got {:?}", other.err().map(|e| e.to_string())),
    }
    assert!(matches!(Ring::new(&eal, "r", 1000, RingSync::Single, RingSync::Single), Err(DpdkError::Ring { .. })));
    assert!(matches!(
        Ring::new(&eal, &long, 64, RingSync::Single, RingSync::Single),
        Err(DpdkError::NameTooLong { .. })
    ));

    // Launching on the main lcore or one that does not exist.
    assert!(matches!(eal.launch(eal.main_lcore(), || ()), Err(DpdkError::Lcore { .. })));
    assert!(matches!(eal.launch(7, || ()), Err(DpdkError::Lcore { lcore: 7, .. })));
    // A job that panics is reported, and the lcore can be used again.
    let worker = eal.worker_lcores()[0];
    let job = eal.launch(worker, || -> u32 { panic!("worker failed on purpose") }).unwrap();
    assert_eq!(
        job.join().err(),
        Some(DpdkError::LcorePanicked { lcore: worker, message: "worker failed on purpose".into() })
    );
    assert_eq!(eal.launch(worker, || 41 + 1).unwrap().join().unwrap(), 42);

    // Cleanup refuses while a DPDK object is alive.
    let (eal, err) = eal.cleanup().expect_err("the pool is alive");
    assert!(matches!(err, DpdkError::EalBusy { live_objects: 1, mbufs_out: 0 }), "{err}");
    drop(pool);
    eal.cleanup().map_err(|(_, e)| e).expect("cleanup");
}
