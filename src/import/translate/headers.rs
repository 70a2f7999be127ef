//! `add_header` / `proxy_set_header`: which become response headers, request headers, CORS or nothing.

use super::*;

impl Translator<'_> {
    /// Sorts `add_header` lines into what `security_headers = true` covers,
    /// extra response headers, and CORS headers.
    #[allow(clippy::type_complexity)]
    pub(super) fn classify_headers(
        &mut self,
        headers: &[Header],
        tls: bool,
        notes: &mut Vec<String>,
    ) -> (Option<String>, Vec<(String, String)>, Option<Vec<Header>>) {
        let mut covered = Vec::new();
        let mut extra = Vec::new();
        let mut cors = Vec::new();
        for h in headers {
            let lower = h.name.to_ascii_lowercase();
            if lower.starts_with("access-control-") {
                cors.push(h.clone());
                continue;
            }
            if h.value.contains('$') {
                notes.push(format!(
                    "not imported: add_header {} {} ({}) — header values with variables are not supported",
                    h.name,
                    h.value,
                    self.at(&h.pos)
                ));
                self.skipped.push(("add_header".into(), h.pos.clone()));
                continue;
            }
            match SECURITY.iter().find(|(n, _, _)| n.name().as_str() == lower) {
                Some((_, v, _)) if v.as_bytes().eq_ignore_ascii_case(h.value.as_bytes()) => {
                    covered.push(h.name.clone())
                }
                Some(_) if lower == "x-xss-protection" => {
                    covered.push(h.name.clone());
                    notes.push(format!(
                        "X-XSS-Protection \"{}\" becomes \"0\": the XSS auditor is gone from browsers and its blocking mode could be abused (OWASP recommends 0); set it under response_headers to keep the old value",
                        h.value
                    ));
                }
                Some(_) if lower == "strict-transport-security" && !tls => {
                    notes.push("Strict-Transport-Security on a plain-HTTP server is ignored by browsers; not imported".into());
                }
                _ => match extra
                    .iter_mut()
                    .find(|(n, _): &&mut (String, String)| n.eq_ignore_ascii_case(&h.name))
                {
                    // nginx sends one header line per add_header; one line
                    // with both values means the same for list headers.
                    Some((_, v)) => {
                        v.push_str(", ");
                        v.push_str(&h.value);
                    }
                    None => extra.push((h.name.clone(), h.value.clone())),
                },
            }
        }
        let missing: Vec<String> = SECURITY
            .iter()
            .filter(|(_, _, tls_only)| tls || !tls_only)
            .filter(|(n, _, _)| {
                !headers
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case(n.as_str()))
            })
            .map(|(n, _, _)| n.as_str().to_string())
            .collect();
        let covered = (!covered.is_empty()).then(|| {
            let mut c = format!("covers add_header {}", covered.join(", "));
            if !missing.is_empty() {
                c.push_str(&format!(
                    "; also sends {} (nginx did not)",
                    missing.join(", ")
                ));
            }
            c
        });
        (covered, extra, (!cors.is_empty()).then_some(cors))
    }
}

pub(super) fn is_standard_proxy_header(name: &str, value: &str) -> bool {
    let n = name.to_ascii_lowercase();
    match n.as_str() {
        "host" => matches!(
            value,
            "$host" | "$http_host" | "$proxy_host" | "$server_name"
        ),
        "x-real-ip" => value == "$remote_addr",
        "x-forwarded-for" => matches!(value, "$proxy_add_x_forwarded_for" | "$remote_addr"),
        "x-forwarded-proto" => value == "$scheme",
        "x-forwarded-host" => matches!(value, "$host" | "$http_host" | "$server_name"),
        "upgrade" => value == "$http_upgrade",
        "connection" => matches!(value, "upgrade" | "Upgrade" | "$connection_upgrade" | ""),
        "x-request-id" => value == "$request_id",
        _ => false,
    }
}

pub(super) fn header_case(s: &str) -> String {
    s.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}
