use std::fmt;

/// Everything that can go wrong in the DPDK layer, with the values involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpdkError {
    /// `rte_eal_init` refused the arguments or failed to start.
    EalInit { args: Vec<String>, code: i32, reason: String },
    /// The EAL was already initialised in this process (DPDK allows it once).
    EalAlreadyInitialized,
    /// The EAL was cleaned up; DPDK cannot be initialised again in this process.
    EalCleanedUp,
    /// `Eal::cleanup` while DPDK objects or mbufs are still alive.
    EalBusy { live_objects: usize, mbufs_out: u32 },
    /// An argument contains a NUL byte and cannot be passed to C.
    NulInArgument { arg: String },
    /// No ethdev port has this name (for example a `--vdev` that was not given).
    PortNotFound { name: String },
    /// A port operation failed.
    Port { port: u16, op: &'static str, code: i32, reason: String },
    /// The port cannot do what the configuration asks.
    PortUnsupported { port: u16, what: String },
    /// Creating a mempool failed.
    Mempool { name: String, code: i32, reason: String },
    /// Creating a ring failed.
    Ring { name: String, code: i32, reason: String },
    /// A name is too long for DPDK's fixed-size name fields.
    NameTooLong { name: String, max: usize },
    /// An lcore cannot run the job.
    Lcore { lcore: u32, reason: String },
    /// A job on an lcore panicked.
    LcorePanicked { lcore: u32, message: String },
    /// `rte_eal_alarm_set` refused (the I/O fence's alarm).
    Alarm { code: i32, reason: String },
    /// `rte_eal_hotplug_add` could not create the virtual device.
    Vdev { name: String, args: String, code: i32, reason: String },
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpdkError::EalInit { args, code, reason } => {
                write!(f, "EAL initialisation failed with arguments {args:?}: {reason} (error {code})")
            }
            DpdkError::EalAlreadyInitialized => {
                write!(f, "the EAL is already initialised in this process (DPDK allows one init per process)")
            }
            DpdkError::EalCleanedUp => {
                write!(f, "the EAL was cleaned up; DPDK cannot be initialised again in this process")
            }
            DpdkError::EalBusy { live_objects, mbufs_out } => write!(
                f,
                "cannot clean up the EAL: {live_objects} DPDK objects still alive, {mbufs_out} mbufs not returned to their pools"
            ),
            DpdkError::NulInArgument { arg } => write!(f, "argument {arg:?} contains a NUL byte"),
            DpdkError::PortNotFound { name } => write!(f, "no DPDK port named {name:?} (is the device given to the EAL?)"),
            DpdkError::Port { port, op, code, reason } => {
                write!(f, "port {port}: {op} failed: {reason} (error {code})")
            }
            DpdkError::PortUnsupported { port, what } => write!(f, "port {port}: {what}"),
            DpdkError::Mempool { name, code, reason } => {
                write!(f, "cannot create mempool {name:?}: {reason} (error {code})")
            }
            DpdkError::Ring { name, code, reason } => write!(f, "cannot create ring {name:?}: {reason} (error {code})"),
            DpdkError::NameTooLong { name, max } => write!(f, "name {name:?} is longer than DPDK's limit of {max} bytes"),
            DpdkError::Lcore { lcore, reason } => write!(f, "lcore {lcore}: {reason}"),
            DpdkError::LcorePanicked { lcore, message } => write!(f, "the job on lcore {lcore} panicked: {message}"),
            DpdkError::Alarm { code, reason } => write!(f, "cannot set an EAL alarm: {reason} (error {code})"),
            DpdkError::Vdev { name, args, code, reason } => {
                write!(f, "cannot create virtual device {name:?} with {args:?}: {reason} (error {code})")
            }
        }
    }
}

impl std::error::Error for DpdkError {}
