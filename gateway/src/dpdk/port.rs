//! Ethernet ports: configuration, queues, link status and counters.
//!
//! A port is opened once with all its queues; each queue is an owned handle
//! that one lcore polls (rx) or feeds (tx), so two lcores can never share a
//! queue. The port stops and closes when the `Port` and every queue handle are
//! gone, which returns the mbufs its rx descriptors held to their pool.

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::sync::Arc;

use super::{strerror, Burst, DpdkError, Eal, EalRef, Mempool, Vdev};

/// How to open a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// Spread received packets across rx queues by RSS hash (when there is
    /// more than one rx queue and the device hashes at all).
    pub rss: bool,
    /// Ask the NIC for IPv4/TCP/UDP checksum offloads where it has them.
    pub checksum_offload: bool,
    pub promiscuous: bool,
    pub mtu: Option<u16>,
    /// The RSS key to program (when the device takes a 40-byte key), so that
    /// software can predict which queue receives a flow (`net::rss`).
    pub rss_key: [u8; 40],
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            rss: true,
            checksum_offload: true,
            promiscuous: true,
            mtu: None,
            rss_key: crate::net::rss::DEFAULT_KEY,
        }
    }
}

/// What the port can do, and what this configuration turned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortCaps {
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    /// RSS hash functions in use (`RTE_ETH_RSS_*`); 0 when RSS is off.
    pub rss_hf: u64,
    pub reta_size: u16,
    /// The key programmed into the device, when it took ours.
    pub rss_key: Option<[u8; 40]>,
    pub rx_ipv4_checksum: bool,
    pub rx_l4_checksum: bool,
    pub tx_ipv4_checksum: bool,
    pub tx_tcp_checksum: bool,
    pub tx_udp_checksum: bool,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// What can be said of a port's link, for the data path and `gwctl link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Up,
    Down,
    /// The driver cannot know. A `net_tap` port reports its kernel
    /// interface's IFF_UP and IFF_RUNNING, read by an ioctl on the
    /// interface's name in the gateway's own network namespace; once the
    /// interface is moved into another namespace (where it keeps
    /// forwarding) that ioctl finds nothing and the PMD says "down".
    Unknown,
}

/// Port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Packets the NIC dropped because rx queues were full.
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    /// Receive failures for want of an mbuf.
    pub rx_nombuf: u64,
}

struct PortShared {
    id: u16,
    rx_queues: u16,
    name: String,
    /// The PMD (`net_tap`, `net_memif`, ...).
    driver: String,
    /// The kernel interface the port is bound to, or 0.
    if_index: u32,
    caps: PortCaps,
    _pool: Mempool,
    /// The virtual device the port was opened on, when it is ours to remove:
    /// a field, so it goes after `drop` has closed the port.
    _vdev: Option<Vdev>,
    _eal: EalRef,
}

impl Drop for PortShared {
    fn drop(&mut self) {
        // Receive what is still queued first: some drivers (net_ring, for one)
        // keep queued mbufs across close, which would leak them.
        let mut burst = Burst::new();
        for queue in 0..self.rx_queues {
            // Bounded: some devices (net_null) never run dry.
            for _ in 0..4096 {
                // SAFETY: no queue handle is left, so this is the only poller.
                if unsafe { rx_into(self.id, queue, &mut burst) } == 0 {
                    break;
                }
                burst.clear();
            }
        }
        // SAFETY: the last handle to the port is going away, so no lcore polls
        // it any more; stop then close releases its queues and their mbufs.
        unsafe {
            dpdk_sys::rte_eth_dev_stop(self.id);
            dpdk_sys::rte_eth_dev_close(self.id);
        }
    }
}

/// A started Ethernet port.
pub struct Port {
    shared: Arc<PortShared>,
}

/// One receive queue of a port; polled by exactly one lcore.
pub struct RxQueue {
    port: Arc<PortShared>,
    queue: u16,
}

/// One transmit queue of a port; fed by exactly one lcore.
pub struct TxQueue {
    port: Arc<PortShared>,
    queue: u16,
}

fn port_error(port: u16, op: &'static str, code: i32) -> DpdkError {
    DpdkError::Port { port, op, code, reason: strerror(code) }
}

impl Port {
    /// Finds the port DPDK created for device `name` (a PCI address or a
    /// `--vdev` name such as `net_ring0`).
    pub fn id_by_name(name: &str) -> Result<u16, DpdkError> {
        let c_name = CString::new(name).map_err(|_| DpdkError::NulInArgument { arg: name.into() })?;
        let mut id = 0u16;
        // SAFETY: c_name is a valid C string and `id` a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
        if ret != 0 {
            return Err(DpdkError::PortNotFound { name: name.into() });
        }
        Ok(id)
    }

    /// The driver of the device named `name` (`net_tap`, `net_memif`, ...),
    /// before it is opened.
    pub fn driver_by_name(name: &str) -> Result<String, DpdkError> {
        Ok(driver_name(&dev_info(Self::id_by_name(name)?)?))
    }

    /// Configures and starts the port named `name`, with every queue's rx
    /// buffers from `pool`, and returns it with its queues.
    pub fn open(
        eal: &Eal,
        name: &str,
        config: &PortConfig,
        pool: &Mempool,
    ) -> Result<(Port, Vec<RxQueue>, Vec<TxQueue>), DpdkError> {
        Self::open_device(eal, name, None, config, pool)
    }

    /// Like [`Port::open`], on a virtual device this process created: the
    /// device is removed when the port closes (or at once, if it cannot be opened).
    pub fn open_vdev(
        eal: &Eal,
        vdev: Vdev,
        config: &PortConfig,
        pool: &Mempool,
    ) -> Result<(Port, Vec<RxQueue>, Vec<TxQueue>), DpdkError> {
        let name = vdev.name().to_owned();
        Self::open_device(eal, &name, Some(vdev), config, pool)
    }

    fn open_device(
        eal: &Eal,
        name: &str,
        vdev: Option<Vdev>,
        config: &PortConfig,
        pool: &Mempool,
    ) -> Result<(Port, Vec<RxQueue>, Vec<TxQueue>), DpdkError> {
        let id = Self::id_by_name(name)?;
        let info = dev_info(id)?;
        if config.rx_queues == 0 || config.rx_queues > info.max_rx_queues {
            return Err(DpdkError::PortUnsupported {
                port: id,
                what: format!("{} rx queues asked, the device has 1..={}", config.rx_queues, info.max_rx_queues),
            });
        }
        if config.tx_queues == 0 || config.tx_queues > info.max_tx_queues {
            return Err(DpdkError::PortUnsupported {
                port: id,
                what: format!("{} tx queues asked, the device has 1..={}", config.tx_queues, info.max_tx_queues),
            });
        }

        let mut caps = PortCaps {
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            reta_size: info.reta_size,
            ..PortCaps::default()
        };
        // SAFETY: rte_eth_conf is a plain C struct for which all-zero is the
        // documented default configuration.
        let mut conf: dpdk_sys::rte_eth_conf = unsafe { MaybeUninit::zeroed().assume_init() };
        // rte_eth_dev_configure copies the key; it only has to outlive the call.
        let mut key = config.rss_key;
        let wanted_rss = dpdk_sys::RTE_ETH_RSS_IP | dpdk_sys::RTE_ETH_RSS_TCP | dpdk_sys::RTE_ETH_RSS_UDP;
        let rss_hf = wanted_rss & info.flow_type_rss_offloads;
        if config.rss && config.rx_queues > 1 && rss_hf != 0 {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            caps.rss_hf = rss_hf;
            if usize::from(info.hash_key_size) == key.len() {
                conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = info.hash_key_size;
                caps.rss_key = Some(config.rss_key);
            }
            if info.rx_offload_capa & dpdk_sys::RTE_ETH_RX_OFFLOAD_RSS_HASH != 0 {
                conf.rxmode.offloads |= dpdk_sys::RTE_ETH_RX_OFFLOAD_RSS_HASH;
            }
        }
        if config.checksum_offload {
            let rx = info.rx_offload_capa;
            let tx = info.tx_offload_capa;
            use dpdk_sys::*;
            caps.rx_ipv4_checksum = rx & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM != 0;
            caps.rx_l4_checksum = rx & (RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM)
                == (RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
            caps.tx_ipv4_checksum = tx & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM != 0;
            caps.tx_tcp_checksum = tx & RTE_ETH_TX_OFFLOAD_TCP_CKSUM != 0;
            caps.tx_udp_checksum = tx & RTE_ETH_TX_OFFLOAD_UDP_CKSUM != 0;
            if caps.rx_ipv4_checksum {
                conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
            }
            if caps.rx_l4_checksum {
                conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
            }
            for (on, flag) in [
                (caps.tx_ipv4_checksum, RTE_ETH_TX_OFFLOAD_IPV4_CKSUM),
                (caps.tx_tcp_checksum, RTE_ETH_TX_OFFLOAD_TCP_CKSUM),
                (caps.tx_udp_checksum, RTE_ETH_TX_OFFLOAD_UDP_CKSUM),
            ] {
                if on {
                    conf.txmode.offloads |= flag;
                }
            }
        }

        // SAFETY: `id` is a valid port and `conf` a fully initialised config.
        let ret = unsafe { dpdk_sys::rte_eth_dev_configure(id, config.rx_queues, config.tx_queues, &conf) };
        if ret < 0 {
            return Err(port_error(id, "configure", ret));
        }
        // From here on, a failure must close the port again.
        let shared = Arc::new(PortShared {
            id,
            rx_queues: config.rx_queues,
            name: name.into(),
            driver: driver_name(&info),
            if_index: info.if_index,
            caps,
            _pool: pool.clone(),
            _vdev: vdev,
            _eal: eal.handle(),
        });
        // SAFETY: valid port id; returns a socket id or -1.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { dpdk_sys::SOCKET_ID_ANY } else { socket } as u32;

        if let Some(mtu) = config.mtu {
            // SAFETY: valid, configured port.
            let ret = unsafe { dpdk_sys::rte_eth_dev_set_mtu(id, mtu) };
            if ret < 0 {
                return Err(port_error(id, "set MTU", ret));
            }
        }
        for q in 0..config.rx_queues {
            let mut rxconf = info.default_rxconf;
            rxconf.offloads = conf.rxmode.offloads;
            // SAFETY: valid port and queue index; the pool outlives the port
            // (PortShared holds a clone of it).
            let ret = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(id, q, config.rx_descriptors, socket, &rxconf, pool.as_ptr())
            };
            if ret < 0 {
                return Err(port_error(id, "rx queue setup", ret));
            }
        }
        for q in 0..config.tx_queues {
            let mut txconf = info.default_txconf;
            txconf.offloads = conf.txmode.offloads;
            // SAFETY: valid port and queue index.
            let ret = unsafe { dpdk_sys::rte_eth_tx_queue_setup(id, q, config.tx_descriptors, socket, &txconf) };
            if ret < 0 {
                return Err(port_error(id, "tx queue setup", ret));
            }
        }
        // SAFETY: valid, fully configured port.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(id) };
        if ret < 0 {
            return Err(port_error(id, "start", ret));
        }
        if config.promiscuous {
            // Not every virtual device has a promiscuous mode; that is no error.
            // SAFETY: valid, started port.
            unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
        }

        let rxq = (0..config.rx_queues).map(|queue| RxQueue { port: shared.clone(), queue }).collect();
        let txq = (0..config.tx_queues).map(|queue| TxQueue { port: shared.clone(), queue }).collect();
        Ok((Port { shared }, rxq, txq))
    }

    pub fn id(&self) -> u16 {
        self.shared.id
    }

    /// Another handle to the same port, for reading its counters from another
    /// thread. The port stays open until every handle and queue is dropped.
    pub fn clone_handle(&self) -> Port {
        Port { shared: self.shared.clone() }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn caps(&self) -> PortCaps {
        self.shared.caps
    }

    /// The driver's name (`net_tap`, `net_memif`, ...).
    pub fn driver(&self) -> &str {
        &self.shared.driver
    }

    /// The link as far as it can be known; a system call or two, so for the
    /// control thread, never a worker's loop.
    pub fn link_state(&self) -> LinkState {
        if self.shared.driver == "net_tap" && self.shared.if_index != 0 && !interface_here(self.shared.if_index) {
            return LinkState::Unknown;
        }
        match self.link() {
            Ok(l) if l.up => LinkState::Up,
            Ok(_) => LinkState::Down,
            Err(_) => LinkState::Unknown,
        }
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<[u8; 6], DpdkError> {
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port; `addr` is a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_macaddr_get(self.shared.id, &mut addr) };
        if ret != 0 {
            return Err(port_error(self.shared.id, "read MAC address", ret));
        }
        Ok(addr.addr_bytes)
    }

    /// The RSS redirection table: entry `i` is the rx queue of hashes whose
    /// low bits are `i`. `None` when RSS is off or the device cannot say.
    pub fn reta(&self) -> Option<Vec<u16>> {
        let size = usize::from(self.shared.caps.reta_size);
        if self.shared.caps.rss_hf == 0 || size == 0 {
            return None;
        }
        let group = dpdk_sys::RTE_ETH_RETA_GROUP_SIZE as usize;
        let mut conf = vec![dpdk_sys::rte_eth_rss_reta_entry64 { mask: u64::MAX, reta: [0; 64] }; size.div_ceil(group)];
        // SAFETY: `conf` has one 64-entry group per 64 table entries, as the
        // call requires for `size` entries.
        let ret = unsafe { dpdk_sys::rte_eth_dev_rss_reta_query(self.shared.id, conf.as_mut_ptr(), size as u16) };
        if ret != 0 {
            return None;
        }
        Some((0..size).map(|i| conf[i / group].reta[i % group]).collect())
    }

    /// Predicts the rx queue of FNAT replies from this port's RSS key and
    /// redirection table, when the device took our key.
    pub fn reply_steering(&self) -> Option<crate::net::rss::ReplySteering> {
        let key = self.shared.caps.rss_key?;
        crate::net::rss::ReplySteering::new(&key, &self.reta()?).ok()
    }

    /// Link state, without waiting for negotiation.
    pub fn link(&self) -> Result<LinkStatus, DpdkError> {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port; `link` is a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.shared.id, &mut link) };
        if ret != 0 {
            return Err(port_error(self.shared.id, "read link status", ret));
        }
        Ok(LinkStatus {
            up: link.link_status() as u32 == dpdk_sys::RTE_ETH_LINK_UP,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() as u32 == dpdk_sys::RTE_ETH_LINK_FULL_DUPLEX,
        })
    }

    /// The port's counters since start or the last reset.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port; `s` is a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_stats_get(self.shared.id, &mut s) };
        if ret != 0 {
            return Err(port_error(self.shared.id, "read statistics", ret));
        }
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Zeroes the port's counters.
    pub fn reset_stats(&self) -> Result<(), DpdkError> {
        // SAFETY: valid port.
        let ret = unsafe { dpdk_sys::rte_eth_stats_reset(self.shared.id) };
        if ret != 0 {
            return Err(port_error(self.shared.id, "reset statistics", ret));
        }
        Ok(())
    }
}

/// Whether a port of driver `driver` needs as many rx queues as tx queues:
/// a `net_tap` queue is one file descriptor of a multi-queue tap, which does
/// both (the PMD refuses unequal counts), and a `net_af_packet` queue pair
/// one socket of a fanout group; either way the kernel spreads received
/// flows over every pair, so a pair's rx side must be polled.
pub fn pairs_queues(driver: &str) -> bool {
    matches!(driver, "net_tap" | "net_af_packet")
}

/// Whether interface `index` exists in this process's network namespace.
fn interface_here(index: u32) -> bool {
    use rustix::net::{netdevice, socket, AddressFamily, SocketType};
    // An interface that is gone here fails with ENODEV; a failure to make the
    // socket says nothing about the interface, so it counts as present.
    match socket(AddressFamily::INET, SocketType::DGRAM, None) {
        Ok(fd) => netdevice::index_to_name_inlined(&fd, index).is_ok(),
        Err(_) => true,
    }
}

fn driver_name(info: &dpdk_sys::rte_eth_dev_info) -> String {
    if info.driver_name.is_null() {
        return String::new();
    }
    // SAFETY: a non-null driver_name is the driver's static NUL-terminated name.
    unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
}

fn dev_info(id: u16) -> Result<dpdk_sys::rte_eth_dev_info, DpdkError> {
    // SAFETY: rte_eth_dev_info is a plain C struct; zeroed is a valid value
    // and the call fills it in.
    let mut info: dpdk_sys::rte_eth_dev_info = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: `id` came from rte_eth_dev_get_port_by_name; `info` is valid.
    let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut info) };
    if ret != 0 {
        return Err(port_error(id, "read device info", ret));
    }
    Ok(info)
}

/// Receives from `queue` of `port` into the burst's free room; returns how
/// many arrived.
///
/// # Safety
/// No other thread may poll the same queue during the call.
#[inline]
unsafe fn rx_into(port: u16, queue: u16, burst: &mut Burst) -> usize {
    let (slots, room) = burst.spare_raw();
    // SAFETY: `slots` points at `room` writable mbuf pointer slots; the caller
    // guarantees exclusive use of the queue.
    let n = unsafe { dpdk_sys::gw_eth_rx_burst(port, queue, slots, room as u16) } as usize;
    // SAFETY: the driver wrote `n` valid mbufs that the burst now owns.
    unsafe { burst.commit(n) };
    n
}

/// The name DPDK knows port `id` by.
pub fn port_name(id: u16) -> Option<String> {
    let mut buf = [0 as std::os::raw::c_char; dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: `buf` has RTE_ETH_NAME_MAX_LEN bytes as the call requires.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    // SAFETY: on success the buffer holds a NUL-terminated name.
    (ret == 0).then(|| unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}

impl RxQueue {
    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Receives up to the burst's free room; returns how many arrived.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        // SAFETY: the queue is owned by this handle alone (&mut self).
        unsafe { rx_into(self.port.id, self.queue, burst) }
    }
}

impl TxQueue {
    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Sends from the front of the burst; returns how many the NIC took.
    /// Those not taken stay in the burst: retry, or `clear` to drop them.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        if burst.is_empty() {
            return 0;
        }
        let len = burst.len();
        // SAFETY: the first `len` slots are valid owned mbufs; the queue is
        // owned by this handle alone (&mut self).
        let n = unsafe { dpdk_sys::gw_eth_tx_burst(self.port.id, self.queue, burst.live_raw(), len as u16) } as usize;
        // SAFETY: the driver took ownership of the first `n`.
        unsafe { burst.consume_front(n) };
        n
    }
}
