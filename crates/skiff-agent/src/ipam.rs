//! Addresses of simulated nodes and their pods: node `i` gets the InternalIP
//! `node_ip_base + i + 1` and the pod network `pod_cidr_base + i·256` as a /24, from which
//! [`PodIpam`] hands out pod IPs the way host-local IPAM does (round-robin over `.2`–`.254`,
//! so a freed address is not reused at once).

use std::net::Ipv4Addr;

/// The `offset`-th address after `base` (wrapping at the end of the IPv4 space).
pub(crate) fn nth_address(base: Ipv4Addr, offset: u64) -> Ipv4Addr {
    let value = u64::from(u32::from(base)).wrapping_add(offset) % (1u64 << 32);
    Ipv4Addr::from(value as u32)
}

/// The /24 pod network of the node with this index.
pub(crate) fn pod_network(base: Ipv4Addr, index: usize) -> Ipv4Addr {
    nth_address(base, index as u64 * 256)
}

/// The InternalIP of the node with this index.
pub(crate) fn node_address(base: Ipv4Addr, index: usize) -> Ipv4Addr {
    nth_address(base, index as u64 + 1)
}

/// First and last host numbers handed to pods (`.1` is left for a gateway).
const FIRST_HOST: usize = 2;
const LAST_HOST: usize = 254;

/// Pod IPs of one node's /24.
#[derive(Debug, Clone)]
pub(crate) struct PodIpam {
    network: Ipv4Addr,
    used: [bool; 256],
    next: usize,
    in_use: usize,
}

impl PodIpam {
    pub(crate) fn new(network: Ipv4Addr) -> PodIpam {
        PodIpam {
            network,
            used: [false; 256],
            next: FIRST_HOST,
            in_use: 0,
        }
    }

    /// The next free address, or `None` when all 253 are taken.
    pub(crate) fn allocate(&mut self) -> Option<Ipv4Addr> {
        let span = LAST_HOST - FIRST_HOST + 1;
        for step in 0..span {
            let host = FIRST_HOST + (self.next - FIRST_HOST + step) % span;
            if !self.used[host] {
                self.used[host] = true;
                self.in_use += 1;
                self.next = if host == LAST_HOST {
                    FIRST_HOST
                } else {
                    host + 1
                };
                return Some(nth_address(self.network, host as u64));
            }
        }
        None
    }

    /// Marks an address as taken (a pod that already had it, e.g. after a restart); false if
    /// it is outside this node's network or already taken.
    pub(crate) fn claim(&mut self, ip: Ipv4Addr) -> bool {
        match self.host_of(ip) {
            Some(host) if !self.used[host] => {
                self.used[host] = true;
                self.in_use += 1;
                true
            }
            _ => false,
        }
    }

    /// Returns an address to the pool (ignored when it is not one of this node's).
    pub(crate) fn release(&mut self, ip: Ipv4Addr) {
        if let Some(host) = self.host_of(ip)
            && self.used[host]
        {
            self.used[host] = false;
            self.in_use -= 1;
        }
    }

    /// How many addresses are taken.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    fn host_of(&self, ip: Ipv4Addr) -> Option<usize> {
        let offset = u32::from(ip).wrapping_sub(u32::from(self.network)) as usize;
        (FIRST_HOST..=LAST_HOST).contains(&offset).then_some(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_networks_and_addresses_do_not_overlap() {
        let base = Ipv4Addr::new(10, 244, 0, 0);
        assert_eq!(pod_network(base, 0), Ipv4Addr::new(10, 244, 0, 0));
        assert_eq!(pod_network(base, 3), Ipv4Addr::new(10, 244, 3, 0));
        assert_eq!(pod_network(base, 300), Ipv4Addr::new(10, 245, 44, 0));
        let nodes = Ipv4Addr::new(10, 200, 0, 0);
        assert_eq!(node_address(nodes, 0), Ipv4Addr::new(10, 200, 0, 1));
        assert_eq!(node_address(nodes, 255), Ipv4Addr::new(10, 200, 1, 0));
        assert_eq!(
            nth_address(Ipv4Addr::new(255, 255, 255, 255), 1),
            Ipv4Addr::new(0, 0, 0, 0)
        );
    }

    #[test]
    fn allocation_is_unique_round_robin_and_bounded() {
        let mut ipam = PodIpam::new(Ipv4Addr::new(10, 244, 7, 0));
        let first = ipam.allocate().unwrap();
        assert_eq!(first, Ipv4Addr::new(10, 244, 7, 2));
        let second = ipam.allocate().unwrap();
        assert_eq!(second, Ipv4Addr::new(10, 244, 7, 3));
        ipam.release(first);
        // Round-robin: the freed address is not handed out next.
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(10, 244, 7, 4));
        let mut seen = std::collections::HashSet::new();
        seen.insert(second);
        seen.insert(Ipv4Addr::new(10, 244, 7, 4));
        while let Some(ip) = ipam.allocate() {
            assert!(seen.insert(ip), "{ip} handed out twice");
        }
        assert_eq!(seen.len(), 253);
        assert_eq!(ipam.in_use(), 253);
        ipam.release(Ipv4Addr::new(10, 244, 7, 100));
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 244, 7, 100)));
        assert_eq!(ipam.allocate(), None);
    }

    #[test]
    fn claims_and_foreign_addresses() {
        let mut ipam = PodIpam::new(Ipv4Addr::new(10, 244, 1, 0));
        assert!(ipam.claim(Ipv4Addr::new(10, 244, 1, 2)));
        assert!(!ipam.claim(Ipv4Addr::new(10, 244, 1, 2)));
        assert!(!ipam.claim(Ipv4Addr::new(10, 244, 2, 2)));
        assert!(!ipam.claim(Ipv4Addr::new(10, 244, 1, 255)));
        ipam.release(Ipv4Addr::new(10, 9, 9, 9));
        assert_eq!(ipam.in_use(), 1);
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 244, 1, 3)));
    }
}
