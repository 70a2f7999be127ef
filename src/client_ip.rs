//! The real client address behind trusted proxies.
//!
//! When the TCP peer is one of `global.trusted_proxies`, the client is the
//! right-most `X-Forwarded-For` entry that is not itself trusted — entries to
//! its left were written by the client and cannot be believed (nginx
//! `real_ip_recursive on`).

use std::net::IpAddr;

use ipnet::IpNet;

pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|n| n.contains(&ip))
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`) as plain IPv4, so v4 CIDRs match.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Resolves the client IP from the TCP peer and the `X-Forwarded-For`
/// header values (in order of appearance). `xff` is called only when the
/// peer is a trusted proxy: most requests never look the header up.
pub fn resolve<'a, I>(peer: IpAddr, xff: impl FnOnce() -> I, trusted: &[IpNet]) -> IpAddr
where
    I: DoubleEndedIterator<Item = &'a [u8]>,
{
    let peer = canonical(peer);
    if trusted.is_empty() || !is_trusted(peer, trusted) {
        return peer;
    }
    let mut last_trusted = peer;
    for value in xff().rev() {
        let Ok(value) = std::str::from_utf8(value) else {
            return last_trusted;
        };
        for entry in value.rsplit(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let Some(ip) = parse_entry(entry) else {
                // Garbage: stop believing the chain here.
                return last_trusted;
            };
            let ip = canonical(ip);
            if !is_trusted(ip, trusted) {
                return ip;
            }
            last_trusted = ip;
        }
    }
    last_trusted
}

/// An XFF entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.rsplit_once(':').and_then(|(h, _)| h.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let t = nets(&["10.0.0.0/8"]);
        // The header is not even looked at for an untrusted peer.
        let unread = || -> std::vec::IntoIter<&[u8]> { panic!("X-Forwarded-For looked up") };
        assert_eq!(resolve(ip("8.8.8.8"), unread, &t), ip("8.8.8.8"));
        assert_eq!(resolve(ip("8.8.8.8"), unread, &[]), ip("8.8.8.8"));
    }

    #[test]
    fn rightmost_untrusted_entry_wins() {
        let t = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        // client spoofs 6.6.6.6; real client 2.2.2.2 seen by proxy 10.0.0.2
        let xff: Vec<&[u8]> = vec![b"6.6.6.6, 2.2.2.2", b"10.0.0.2"];
        assert_eq!(
            resolve(ip("127.0.0.1"), || xff.clone().into_iter(), &t),
            ip("2.2.2.2")
        );
    }

    #[test]
    fn all_trusted_gives_leftmost() {
        let t = nets(&["10.0.0.0/8"]);
        let xff: Vec<&[u8]> = vec![b"10.1.1.1, 10.2.2.2"];
        assert_eq!(
            resolve(ip("10.0.0.1"), || xff.clone().into_iter(), &t),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn garbage_stops_the_walk_and_mapped_v4_matches() {
        let t = nets(&["10.0.0.0/8"]);
        let xff: Vec<&[u8]> = vec![b"1.1.1.1, nonsense"];
        assert_eq!(
            resolve(ip("::ffff:10.0.0.1"), || xff.clone().into_iter(), &t),
            ip("10.0.0.1")
        );
        let xff: Vec<&[u8]> = vec![b"[2001:db8::1]:443"];
        assert_eq!(
            resolve(ip("10.0.0.1"), || xff.clone().into_iter(), &t),
            ip("2001:db8::1")
        );
    }
}
