//! What the health-check tests read of a running gatewayd: a server's row of
//! `gwctl --health -L`, and its weight as `-Ln` lists it and `-Sn` saves it.

use crate::topology::Topology;

/// The fields of `server`'s line in `gwctl --health -L`: [prot, service, server, check,
/// state, weight, config, result, checks, failed, trans, since, passive, reason...].
pub fn health_row(topo: &Topology, server: &str) -> Vec<String> {
    let listing = topo.gwctl(&["--health", "-L"]);
    listing
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(server))
        .unwrap_or_else(|| panic!("no {server} in\n{listing}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The weight `gwctl -Ln` shows for `rs`, or `None` while it is not listed.
pub fn listed_weight(topo: &Topology, rs: &str) -> Option<u32> {
    let listing = topo.gwctl(&["-Ln"]);
    listing.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[0] == "->" && f[1] == rs).then(|| f[3].parse().unwrap())
    })
}

/// The `-w` that `gwctl -Sn` saves for `rs`.
pub fn saved_weight(topo: &Topology, rs: &str) -> u32 {
    let saved = topo.gwctl(&["-Sn"]);
    let line = saved.lines().find(|l| l.contains(&format!("-r {rs} "))).unwrap_or_else(|| panic!("{saved}"));
    line.split(" -w ").nth(1).and_then(|w| w.split_whitespace().next()).unwrap().parse().unwrap()
}
