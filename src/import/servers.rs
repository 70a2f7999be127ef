//! Fitting nginx's servers into rampart's rules about shared addresses.
//!
//! nginx decides some things per address that rampart decides per server, and
//! tolerates overlaps rampart refuses: a name claimed twice on one address
//! (nginx warns and keeps the first), `listen 80` next to
//! `listen 127.0.0.1:80` (nginx binds the wildcard only), servers on one TLS
//! address with different `ssl_protocols`. [`arrange`] applies nginx's
//! outcome and notes each change in the server it touched.

use std::collections::{BTreeMap, BTreeSet};

use super::toml_out::{list, q, Table};
use crate::config::keys as k;

/// One translated server, before the rules of shared addresses apply.
pub struct ServerOut {
    /// nginx `default_server` on one of its addresses.
    pub default: bool,
    pub name: String,
    pub listens: Vec<String>,
    pub hosts: Vec<String>,
    pub tls: bool,
    pub http2: bool,
    /// `ssl_protocols` kept by rampart, in rampart's order.
    pub protocols: Option<Vec<String>>,
    /// `[[servers]]` without name/listen/hosts/http2, which [`arrange`] adds.
    pub head: Table,
    /// `[servers.tls]` without `protocols`.
    pub tls_table: Option<Table>,
    /// The server's other tables: response headers, compression, routes.
    pub rest: Vec<Table>,
}

/// The servers as tables, in rampart's order (an address's default first).
pub fn arrange(mut servers: Vec<ServerOut>) -> Vec<Table> {
    servers.sort_by_key(|s| !s.default);
    merge_into_wildcards(&mut servers);
    agree_on_protocols(&mut servers);
    resolve_host_claims(&mut servers);

    let mut first_on: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in servers.iter().enumerate() {
        for l in &s.listens {
            first_on.entry(l.clone()).or_insert(i);
        }
    }
    let mut tables = Vec::new();
    for (i, s) in servers.into_iter().enumerate() {
        let mut head = Table::new("[[servers]]");
        head.lead = s.head.lead;
        head.set(k::NAME, q(&s.name));
        head.set(k::LISTEN, list(&s.listens));
        let is_default = s.listens.iter().all(|l| first_on.get(l) == Some(&i));
        if !s.hosts.is_empty() {
            head.set(k::HOSTS, list(&s.hosts));
        } else if !is_default {
            // Without `hosts` a server takes every Host: nginx's nameless
            // server only took requests without one.
            head.set_c(
                k::HOSTS,
                "[]".into(),
                "no server_name: only reached as an address's default",
            );
        }
        if s.tls && s.http2 {
            head.set_c(k::HTTP2, "true".into(), "listen ... http2");
        }
        head.entries.extend(s.head.entries);
        head.notes = s.head.notes;
        tables.push(head);
        if let Some(mut t) = s.tls_table {
            if let Some(p) = &s.protocols {
                t.set_c(k::PROTOCOLS, list(p), "ssl_protocols");
            }
            tables.push(t);
        }
        tables.extend(s.rest);
    }
    tables
}

/// A port for the admin listener that no server uses: 9090 or the next free.
pub fn admin_port(servers: &[ServerOut]) -> u16 {
    let used: BTreeSet<u16> = servers
        .iter()
        .flat_map(|s| &s.listens)
        .filter_map(|l| l.rsplit(':').next()?.parse().ok())
        .collect();
    (9090..u16::MAX).find(|p| !used.contains(p)).unwrap_or(9090)
}

fn port_of(addr: &str) -> Option<&str> {
    addr.rsplit_once(':').map(|(_, p)| p)
}

/// `127.0.0.1:80` where another server has `0.0.0.0:80` becomes the
/// wildcard: nginx binds only the wildcard and picks servers by local IP,
/// rampart refuses overlapping sockets.
fn merge_into_wildcards(servers: &mut [ServerOut]) {
    let wild_ports: BTreeSet<String> = servers
        .iter()
        .flat_map(|s| &s.listens)
        .filter(|l| l.starts_with("0.0.0.0:"))
        .filter_map(|l| port_of(l).map(String::from))
        .collect();
    for s in servers.iter_mut() {
        let mut merged = Vec::new();
        for l in std::mem::take(&mut s.listens) {
            let specific_v4 = !l.starts_with("0.0.0.0:") && !l.starts_with('[');
            let target = match port_of(&l) {
                Some(p) if specific_v4 && wild_ports.contains(p) => {
                    s.head.notes.push(format!(
                        "listen {l} became 0.0.0.0:{p}: another server listens on all addresses of port {p} (nginx then binds only that socket too); this server still answers its own names there"
                    ));
                    format!("0.0.0.0:{p}")
                }
                _ => l,
            };
            if !merged.contains(&target) {
                merged.push(target);
            }
        }
        s.listens = merged;
    }
}

/// rampart chooses TLS versions per address, before SNI: when the servers
/// of a TLS address disagree, all of them get rampart's default.
fn agree_on_protocols(servers: &mut [ServerOut]) {
    let mut by_addr: BTreeMap<&str, BTreeSet<Option<Vec<String>>>> = BTreeMap::new();
    for s in servers.iter().filter(|s| s.tls) {
        for l in &s.listens {
            by_addr.entry(l).or_default().insert(s.protocols.clone());
        }
    }
    let split: BTreeSet<String> = by_addr
        .into_iter()
        .filter(|(_, kinds)| kinds.len() > 1)
        .map(|(a, _)| a.to_string())
        .collect();
    for s in servers.iter_mut().filter(|s| s.tls) {
        if s.listens.iter().any(|l| split.contains(l)) && s.protocols.is_some() {
            s.protocols = None;
            s.head.notes.push(
                "ssl_protocols not imported: the servers sharing this address disagreed, and rampart picks TLS versions per address; all get rampart's default (TLSv1.2 and TLSv1.3)"
                    .into(),
            );
        }
    }
}

/// A name claimed by an earlier server on one of the same addresses stays
/// with that server, as nginx does ("conflicting server name ... ignored").
fn resolve_host_claims(servers: &mut [ServerOut]) {
    let mut claimed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in servers.iter_mut() {
        let mut kept = Vec::new();
        for h in std::mem::take(&mut s.hosts) {
            let taken = s
                .listens
                .iter()
                .any(|l| claimed.get(l).is_some_and(|c| c.contains(&h)));
            if taken {
                s.head.notes.push(format!(
                    "server_name {h}: an earlier server on the same address already has it (nginx ignored it here too: \"conflicting server name\")"
                ));
            } else {
                kept.push(h);
            }
        }
        for l in &s.listens {
            claimed
                .entry(l.clone())
                .or_default()
                .extend(kept.iter().cloned());
        }
        s.hosts = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, listens: &[&str], hosts: &[&str], tls: bool) -> ServerOut {
        ServerOut {
            default: false,
            name: name.into(),
            listens: listens.iter().map(|s| s.to_string()).collect(),
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            tls,
            http2: false,
            protocols: None,
            head: Table::new("[[servers]]"),
            tls_table: tls.then(|| Table::new("[servers.tls]")),
            rest: Vec::new(),
        }
    }

    #[test]
    fn specific_addresses_join_the_wildcard_of_their_port() {
        let mut s = vec![
            server("a", &["0.0.0.0:80"], &["a.test"], false),
            server("b", &["127.0.0.1:80", "127.0.0.1:81"], &["b.test"], false),
        ];
        merge_into_wildcards(&mut s);
        assert_eq!(s[1].listens, ["0.0.0.0:80", "127.0.0.1:81"]);
        assert!(s[1].head.notes[0].contains("became 0.0.0.0:80"));
    }

    #[test]
    fn disagreeing_protocols_fall_back_to_the_default() {
        let mut s = vec![
            server("a", &["0.0.0.0:443"], &["a.test"], true),
            server("b", &["0.0.0.0:443"], &["b.test"], true),
            server("c", &["0.0.0.0:8443"], &["c.test"], true),
        ];
        s[0].protocols = Some(vec!["TLSv1.3".into()]);
        s[2].protocols = Some(vec!["TLSv1.3".into()]);
        agree_on_protocols(&mut s);
        assert_eq!(s[0].protocols, None);
        assert_eq!(s[2].protocols, Some(vec!["TLSv1.3".to_string()]));
    }

    #[test]
    fn the_first_server_keeps_a_name_claimed_twice() {
        let mut s = vec![
            server("site", &["0.0.0.0:80"], &["x.test", "www.x.test"], false),
            server("redirect", &["0.0.0.0:80"], &["x.test"], false),
            server("other", &["0.0.0.0:8080"], &["x.test"], false),
        ];
        resolve_host_claims(&mut s);
        assert!(s[1].hosts.is_empty());
        assert_eq!(s[2].hosts, ["x.test"]);
        let tables = arrange(s);
        let text = super::super::toml_out::render(&tables);
        let doc: toml_edit::DocumentMut = text.parse().unwrap();
        assert_eq!(
            doc["servers"][1]["hosts"].as_array().map(|a| a.len()),
            Some(0)
        );
        assert!(doc["servers"][0].get("hosts").is_some());
    }

    #[test]
    fn the_admin_port_avoids_the_servers() {
        let s = vec![server("a", &["0.0.0.0:9090", "0.0.0.0:9091"], &[], false)];
        assert_eq!(admin_port(&s), 9092);
        assert_eq!(admin_port(&[]), 9090);
    }
}
