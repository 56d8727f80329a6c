//! `ipip_decap TUN_NAME`: a user-space IPv4-in-IPv4 and IPv6-in-IPv6
//! decapsulator for the TUN (`-i`) end-to-end tests, since the kernel here
//! has no `ipip` or `ip6_tunnel` module.
//!
//! Run inside a real server's namespace. A raw IPPROTO_IPIP socket receives
//! every IPv4-tunnelled packet addressed to the namespace (outer header
//! included), a raw IPv6 socket of next header 41 every IPv6-tunnelled one
//! (an IPv6 raw socket hands over what follows the outer header and its
//! extension headers: the inner packet). The inner packet is written into a
//! TUN device, so the namespace's own stack receives it as if it had arrived
//! on a link and answers the client by its routes. Prints "ready" once the
//! device exists (the caller then sets it up); runs until killed.

// The TUNSETIFF ioctl is the one call rustix has no safe wrapper for.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use rustix::ioctl::{ioctl, opcode, Updater};
use rustix::net::{recv, socket, AddressFamily, RecvFlags, SocketType};

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags (the
/// union's other members make it 40 bytes on 64-bit Linux).
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: u16,
    _pad: [u8; 22],
}

const IFF_TUN: u16 = 0x0001;
const IFF_NO_PI: u16 = 0x1000;
/// TUNSETIFF = _IOW('T', 202, int).
const TUNSETIFF: rustix::ioctl::Opcode = opcode::write::<std::ffi::c_int>(b'T', 202);

fn main() {
    let name = std::env::args().nth(1).expect("usage: ipip_decap TUN_NAME");
    assert!(!name.is_empty() && name.len() < 16, "interface name {name:?} must have 1 to 15 bytes");
    let tun = OpenOptions::new().read(true).write(true).open("/dev/net/tun").expect("open /dev/net/tun");
    let mut req = IfReq { name: [0; 16], flags: IFF_TUN | IFF_NO_PI, _pad: [0; 22] };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF takes a pointer to a `struct ifreq`, which `IfReq`
    // lays out (name[16], then the flags short, padded to the union's size),
    // and the kernel writes back at most that struct.
    unsafe { ioctl(tun.as_fd(), Updater::<TUNSETIFF, IfReq>::new(&mut req)) }.expect("TUNSETIFF");

    let ipip = socket(AddressFamily::INET, SocketType::RAW, Some(rustix::net::ipproto::IPIP)).expect("raw IPIP socket");
    let ip6ip6 = socket(AddressFamily::INET6, SocketType::RAW, Some(rustix::net::ipproto::IPV6))
        .expect("raw IPv6-in-IPv6 socket");
    println!("ready");
    std::thread::scope(|s| {
        s.spawn(|| relay(&ipip, &tun, outer_ipv4_len));
        // The kernel took the outer header and its extension headers off.
        s.spawn(|| relay(&ip6ip6, &tun, |_| Some(0)));
    });
}

/// Writes the inner packet of each packet `raw` receives into `tun`: what
/// follows the first `outer(packet)` bytes (`None`: not a tunnelled packet).
fn relay(raw: &OwnedFd, mut tun: &File, outer: impl Fn(&[u8]) -> Option<usize>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (len, _) = recv(raw, &mut buf[..], RecvFlags::empty()).expect("recv");
        let packet = &buf[..len];
        let Some(inner) = outer(packet).and_then(|n| packet.get(n..)).filter(|p| !p.is_empty()) else { continue };
        // A write fails only if the device is down or the packet is not IP;
        // a tunnel drops such packets, so do we.
        let _ = tun.write(inner);
    }
}

/// The outer IPv4 header's length (a raw IPv4 socket hands it over too):
/// its IHL words.
fn outer_ipv4_len(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    (first >> 4 == 4 && ihl >= 20).then_some(ihl)
}
