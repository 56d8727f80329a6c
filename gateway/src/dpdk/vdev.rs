//! Virtual devices created at run time (hot-plugged on the `vdev` bus), as
//! `--vdev` does at EAL initialisation: the kernel exception interfaces' `net_tap`s, made
//! once the data port they belong to is open and its MAC known.

use std::ffi::{CStr, CString};

use super::{strerror, DpdkError, Eal, EalRef};

/// The bus virtual devices live on.
const VDEV_BUS: &CStr = c"vdev";

/// A virtual device this process created; removed (hot-unplugged) when
/// dropped. A port opened on it ([`super::Port::open_vdev`]) keeps it until
/// the port is closed, so the device never goes while its port is in use.
pub struct Vdev {
    name: String,
    c_name: CString,
    _eal: EalRef,
}

impl Vdev {
    /// Creates device `name` (its driver's name first, as in `net_tap_gwk0`)
    /// with driver arguments `args` (`iface=gwk0,mac=02:00:00:00:00:01`).
    pub fn create(eal: &Eal, name: &str, args: &str) -> Result<Vdev, DpdkError> {
        let c_name = CString::new(name).map_err(|_| DpdkError::NulInArgument { arg: name.into() })?;
        let c_args = CString::new(args).map_err(|_| DpdkError::NulInArgument { arg: args.into() })?;
        // SAFETY: all are valid NUL-terminated strings that outlive the call;
        // the EAL is initialised (we hold &Eal). The device is probed before
        // the call returns.
        let ret = unsafe { dpdk_sys::rte_eal_hotplug_add(VDEV_BUS.as_ptr(), c_name.as_ptr(), c_args.as_ptr()) };
        if ret != 0 {
            return Err(DpdkError::Vdev { name: name.into(), args: args.into(), code: ret, reason: strerror(ret) });
        }
        Ok(Vdev { name: name.into(), c_name, _eal: eal.handle() })
    }

    /// The device's name, which is also its ethdev port's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Vdev {
    fn drop(&mut self) {
        // SAFETY: the device was created by rte_vdev_init with this name and
        // is removed once; a port opened on it has been closed (it holds the
        // Vdev until then), so nothing uses the device any more.
        let ret = unsafe { dpdk_sys::rte_eal_hotplug_remove(VDEV_BUS.as_ptr(), self.c_name.as_ptr()) };
        if ret != 0 {
            log::warn!("dpdk: cannot remove virtual device {:?}: {} (error {ret})", self.name, strerror(ret));
        }
    }
}
