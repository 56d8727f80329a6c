//! Host and service names, for input (`-t www:http`) and for listings without `-n`.
//!
//! ipvsadm asks the system resolver (`gethostbyname`, `gethostbyaddr`, `getservbyname`,
//! `getservbyport`). We read the two databases those consult first and that are reliable
//! offline, `/etc/hosts` and `/etc/services`, and do no DNS: a listing must not hang on a
//! resolver, and a gateway's control tool must not depend on one. An address without an
//! `/etc/hosts` name is printed as a number, exactly as ipvsadm does when resolution fails.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::api::TransportProtocol;

/// The name databases, loaded once per run.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// `(address, canonical name, aliases)` in file order.
    hosts: Vec<(IpAddr, Vec<String>)>,
    /// `(name, port, protocol, aliases)` in file order.
    services: Vec<(u16, TransportProtocol, Vec<String>)>,
}

impl Names {
    /// Loads `/etc/hosts` and `/etc/services`; a missing file means no names.
    pub fn system() -> Names {
        Names::from_files(Path::new("/etc/hosts"), Path::new("/etc/services"))
    }

    pub fn from_files(hosts: &Path, services: &Path) -> Names {
        let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
        Names::parse(&read(hosts), &read(services))
    }

    /// No names at all: everything prints as numbers.
    pub fn none() -> Names {
        Names::default()
    }

    pub fn parse(hosts: &str, services: &str) -> Names {
        let fields = |line: &str| -> Vec<String> {
            line.split('#').next().unwrap_or("").split_whitespace().map(str::to_string).collect()
        };
        let hosts = hosts
            .lines()
            .filter_map(|line| {
                let f = fields(line);
                let addr: IpAddr = f.first()?.parse().ok()?;
                (f.len() > 1).then(|| (addr, f[1..].to_vec()))
            })
            .collect();
        let services = services
            .lines()
            .filter_map(|line| {
                let f = fields(line);
                let (port, proto) = f.get(1)?.split_once('/')?;
                let port: u16 = port.parse().ok()?;
                let proto = match proto {
                    "tcp" => TransportProtocol::Tcp,
                    "udp" => TransportProtocol::Udp,
                    _ => return None,
                };
                let mut names = vec![f[0].clone()];
                names.extend(f[2..].iter().cloned());
                Some((port, proto, names))
            })
            .collect();
        Names { hosts, services }
    }

    /// The first name of `addr` in the hosts file (`gethostbyaddr`'s answer from files).
    pub fn host_name(&self, addr: IpAddr) -> Option<&str> {
        self.hosts.iter().find(|(a, _)| *a == addr).map(|(_, n)| n[0].as_str())
    }

    /// The first address of `name` (canonical name or alias) of the given family, if any.
    pub fn host_addr(&self, name: &str, want_v6: bool) -> Option<IpAddr> {
        self.hosts.iter().find(|(a, n)| a.is_ipv6() == want_v6 && n.iter().any(|x| x == name)).map(|(a, _)| *a)
    }

    /// `getservbyport`: the service name of a port for a protocol.
    pub fn service_name(&self, port: u16, proto: TransportProtocol) -> Option<&str> {
        self.services.iter().find(|(p, pr, _)| *p == port && *pr == proto).map(|(_, _, n)| n[0].as_str())
    }

    /// `getservbyname`: the port of a service name or alias for a protocol.
    pub fn service_port(&self, name: &str, proto: TransportProtocol) -> Option<u16> {
        self.services.iter().find(|(_, pr, n)| *pr == proto && n.iter().any(|x| x == name)).map(|(p, _, _)| *p)
    }
}

/// Where a test can point the databases: `GWCTL_HOSTS` and `GWCTL_SERVICES` override the
/// system files (for reproducible listings without `-n`).
pub fn from_env() -> Names {
    let hosts = std::env::var_os("GWCTL_HOSTS").map(PathBuf::from);
    let services = std::env::var_os("GWCTL_SERVICES").map(PathBuf::from);
    Names::from_files(
        hosts.as_deref().unwrap_or(Path::new("/etc/hosts")),
        services.as_deref().unwrap_or(Path::new("/etc/services")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_follow_file_order() {
        let n = Names::parse(
            "127.0.0.1 localhost\n10.0.0.1 web1 www # front\n10.0.0.1 other\n::1 localhost6\n",
            "http 80/tcp www # WWW\nhttp 80/udp\ndomain 53/udp\n# comment\nbroken line\n",
        );
        assert_eq!(n.host_name("10.0.0.1".parse().unwrap()), Some("web1"));
        assert_eq!(n.host_addr("www", false), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(n.host_addr("localhost6", false), None);
        assert_eq!(n.service_name(80, TransportProtocol::Tcp), Some("http"));
        assert_eq!(n.service_name(53, TransportProtocol::Tcp), None);
        assert_eq!(n.service_port("www", TransportProtocol::Tcp), Some(80));
        assert_eq!(n.service_port("domain", TransportProtocol::Udp), Some(53));
    }
}
