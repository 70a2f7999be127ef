//! `allow` / `deny` (nginx's access module, in rampart's simpler form):
//! a client address in `deny` is refused; with a non-empty `allow`, any
//! address not in it is refused too. The address is the client's after
//! `trusted_proxies` ([`crate::client_ip`]).

use std::net::IpAddr;

use ipnet::IpNet;

/// A route's access rules, the server's merged in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessList {
    pub deny: Vec<IpNet>,
    /// Empty: no restriction.
    pub allow: Vec<IpNet>,
}

impl AccessList {
    /// Whether the rules let nobody be refused (the common case: skipped).
    pub fn is_open(&self) -> bool {
        self.deny.is_empty() && self.allow.is_empty()
    }

    /// Whether a client at `ip` may go on. An IPv4 client seen on an IPv6
    /// socket (`::ffff:10.0.0.1`) is matched as the IPv4 address it is.
    pub fn admits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        !self.deny.iter().any(|n| n.contains(&ip))
            && (self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip)))
    }
}

/// An `allow`/`deny` entry: an address or a CIDR.
pub fn parse_entry(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| match s {
            "all" => "\"all\": write \"0.0.0.0/0\" and \"::/0\" for every address".to_string(),
            _ => format!("\"{s}\": expected an address or CIDR such as \"10.0.0.0/8\""),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(deny: &[&str], allow: &[&str]) -> AccessList {
        let p = |v: &[&str]| v.iter().map(|s| parse_entry(s).unwrap()).collect();
        AccessList {
            deny: p(deny),
            allow: p(allow),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn deny_is_checked_before_allow() {
        let l = list(&["10.0.13.0/24"], &["10.0.0.0/8", "192.168.1.7"]);
        assert!(l.admits(ip("10.1.2.3")));
        assert!(l.admits(ip("192.168.1.7")));
        assert!(!l.admits(ip("10.0.13.9")), "denied inside an allowed range");
        assert!(!l.admits(ip("192.168.1.8")), "not in allow");
        assert!(!l.admits(ip("2001:db8::1")));
    }

    #[test]
    fn an_empty_allow_restricts_nothing() {
        let l = list(&["127.0.0.1"], &[]);
        assert!(!l.admits(ip("127.0.0.1")));
        assert!(l.admits(ip("127.0.0.2")));
        assert!(list(&[], &[]).is_open());
        assert!(list(&[], &[]).admits(ip("::1")));
    }

    #[test]
    fn mapped_ipv4_clients_match_ipv4_rules() {
        let l = list(&[], &["10.0.0.0/8"]);
        assert!(l.admits(ip("::ffff:10.0.0.1")));
        assert!(!l.admits(ip("::ffff:11.0.0.1")));
    }

    #[test]
    fn entries_are_addresses_or_cidrs() {
        assert!(parse_entry("10.0.0.0/8").is_ok());
        assert!(parse_entry("2001:db8::/32").is_ok());
        assert_eq!(parse_entry("::1").unwrap().prefix_len(), 128);
        assert!(parse_entry("all").unwrap_err().contains("0.0.0.0/0"));
        assert!(parse_entry("10.0.0.0/33").is_err());
        assert!(parse_entry("example.com").is_err());
    }
}
