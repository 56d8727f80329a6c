//! EAL initialisation, cleanup, and running closures on worker lcores.

use std::any::Any;
use std::ffi::{c_int, c_void, CString};
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use super::{last_errno, strerror, DpdkError};

/// Where the process stands with DPDK. DPDK can be initialised once per
/// process and never again after cleanup.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Uninitialised,
    Running,
    CleanedUp,
}

static PHASE: Mutex<Phase> = Mutex::new(Phase::Uninitialised);

/// Registry of every live object that depends on the EAL, so that cleanup can
/// refuse while any exists. Holds the mempools' fill levels as well.
#[derive(Default)]
pub(crate) struct EalShared {
    pub(crate) pools: Mutex<Vec<PoolWatch>>,
}

/// A mempool known to the EAL, kept until the pool is freed so that cleanup
/// can tell whether any of its mbufs is still out.
pub(crate) struct PoolWatch {
    pub(crate) pool: super::mempool::RawPool,
    pub(crate) size: u32,
}

/// A counted reference to the running EAL. Every DPDK object holds one.
#[derive(Clone)]
pub struct EalRef(pub(crate) Arc<EalShared>);

/// The initialised Environment Abstraction Layer of this process.
pub struct Eal {
    shared: Arc<EalShared>,
    main_lcore: u32,
}

impl Eal {
    /// Initialises DPDK with `args`, exactly as they would follow the program
    /// name on a DPDK application's command line (for example
    /// `["-l", "0-1", "--no-huge", "--in-memory", "--vdev=net_ring0"]`).
    /// Every argument must be an EAL argument.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        let mut phase = PHASE.lock().unwrap_or_else(|e| e.into_inner());
        match *phase {
            Phase::Running => return Err(DpdkError::EalAlreadyInitialized),
            Phase::CleanedUp => return Err(DpdkError::EalCleanedUp),
            Phase::Uninitialised => {}
        }

        let text: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
        let mut owned = Vec::with_capacity(text.len() + 1);
        owned.push(CString::new("gatewayd").expect("no NUL in a literal"));
        for arg in &text {
            owned.push(CString::new(arg.as_str()).map_err(|_| DpdkError::NulInArgument { arg: arg.clone() })?);
        }
        // EAL may keep pointers into argv (and permutes the array), so both the
        // strings and the array live for the rest of the process: a one-time,
        // bounded leak, like a C program's argv.
        let strings: &'static mut [CString] = Box::leak(owned.into_boxed_slice());
        let argv: &'static mut [*mut c_char] =
            Box::leak(strings.iter().map(|s| s.as_ptr() as *mut c_char).collect::<Vec<_>>().into_boxed_slice());
        let argc = argv.len() as c_int;

        // SAFETY: argv holds argc valid NUL-terminated strings that outlive the
        // process; PHASE's lock serialises initialisation.
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let code = last_errno();
            return Err(DpdkError::EalInit { args: text, code, reason: strerror(code) });
        }
        *phase = Phase::Running;
        // SAFETY: plain getter, valid after a successful init.
        let main_lcore = unsafe { dpdk_sys::rte_get_main_lcore() };
        Ok(Eal { shared: Arc::new(EalShared::default()), main_lcore })
    }

    /// A reference that keeps cleanup from running while it lives.
    pub fn handle(&self) -> EalRef {
        EalRef(self.shared.clone())
    }

    /// The lcore that called [`Eal::init`].
    pub fn main_lcore(&self) -> u32 {
        self.main_lcore
    }

    /// The worker lcores (every enabled lcore but the main one), in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // SAFETY: rte_get_next_lcore only reads EAL's lcore configuration.
        let mut id = unsafe { dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while id < dpdk_sys::RTE_MAX_LCORE {
            out.push(id);
            // SAFETY: as above.
            id = unsafe { dpdk_sys::rte_get_next_lcore(id, 1, 0) };
        }
        out
    }

    /// Runs `job` on worker lcore `lcore`. The lcore must be idle.
    pub fn launch<F, T>(&self, lcore: u32, job: F) -> Result<LcoreJob<T>, DpdkError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if !self.worker_lcores().contains(&lcore) {
            return Err(DpdkError::Lcore {
                lcore,
                reason: format!("not a worker lcore of this EAL (workers: {:?})", self.worker_lcores()),
            });
        }
        let slot: Arc<Mutex<Option<Result<T, String>>>> = Arc::new(Mutex::new(None));
        let result = slot.clone();
        let eal = self.handle();
        let task: Box<dyn FnOnce() + Send> = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(job)).map_err(panic_message);
            *result.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
            drop(eal);
        });
        let arg = Box::into_raw(Box::new(task));
        // SAFETY: `trampoline` takes back ownership of `arg` exactly once when
        // the launch succeeds; on failure the box is reclaimed below.
        let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg.cast::<c_void>(), lcore) };
        if ret != 0 {
            // SAFETY: the launch failed, so the lcore never saw `arg`.
            drop(unsafe { Box::from_raw(arg) });
            return Err(DpdkError::Lcore { lcore, reason: format!("cannot launch: {} (lcore busy?)", strerror(ret)) });
        }
        Ok(LcoreJob { lcore, slot, _eal: self.handle() })
    }

    /// Releases DPDK's resources. Refused while any DPDK object is alive or any
    /// mbuf has not returned to its pool; afterwards DPDK cannot be used again
    /// in this process. A refusal hands the `Eal` back with the reason.
    pub fn cleanup(self) -> Result<(), (Eal, DpdkError)> {
        let live_objects = Arc::strong_count(&self.shared) - 1;
        let mbufs_out: u32 = self
            .shared
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|p| p.size - p.pool.avail_count())
            .sum();
        if live_objects > 0 || mbufs_out > 0 {
            return Err((self, DpdkError::EalBusy { live_objects, mbufs_out }));
        }
        let mut phase = PHASE.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: no DPDK object or mbuf of ours is alive and every lcore job
        // has finished (each holds an EalRef until its closure returns).
        let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
        *phase = Phase::CleanedUp;
        if ret < 0 {
            // DPDK is unusable now whatever happened; report it, keep nothing.
            eprintln!("rte_eal_cleanup failed: {} (error {ret})", strerror(ret));
        }
        Ok(())
    }
}

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` came from Box::into_raw in Eal::launch and is consumed once.
    let task = unsafe { Box::from_raw(arg.cast::<Box<dyn FnOnce() + Send>>()) };
    // The task catches its own panics; never unwind into C.
    task();
    0
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// A closure running on a worker lcore.
pub struct LcoreJob<T> {
    lcore: u32,
    slot: Arc<Mutex<Option<Result<T, String>>>>,
    _eal: EalRef,
}

impl<T> LcoreJob<T> {
    /// The lcore the job runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Whether the job has ended (returned or panicked): [`LcoreJob::join`] will not wait.
    pub fn is_finished(&self) -> bool {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Waits for the job to finish and returns its value, or the panic message.
    pub fn join(self) -> Result<T, DpdkError> {
        // SAFETY: waits on an lcore id validated at launch.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) };
        let outcome = self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        match outcome {
            Some(Ok(value)) => Ok(value),
            Some(Err(message)) => Err(DpdkError::LcorePanicked { lcore: self.lcore, message }),
            None => Err(DpdkError::Lcore { lcore: self.lcore, reason: "job ended without a result".into() }),
        }
    }
}
