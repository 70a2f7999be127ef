//! The CORS idioms of nginx configs (`if ($request_method = OPTIONS)`, `add_header Access-Control-*`) as a policy.

use super::*;

impl Translator<'_> {
    /// Turns `Access-Control-*` headers into a `[cors.*]` policy and returns
    /// its name; equal policies are shared.
    pub(super) fn cors_policy(
        &mut self,
        headers: &[Header],
        preflight: Option<&[Header]>,
        notes: &mut Vec<String>,
    ) -> String {
        let all: Vec<&Header> = headers
            .iter()
            .chain(preflight.unwrap_or_default())
            .collect();
        let get = |n: &str| {
            all.iter()
                .find(|h| h.name.eq_ignore_ascii_case(n))
                .map(|h| (*h).clone())
        };
        let split = |v: &str| -> Vec<String> {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let credentials = get("Access-Control-Allow-Credentials")
            .is_some_and(|h| h.value.eq_ignore_ascii_case("true"));
        let mut t = Table::new(String::new());
        let origin = get("Access-Control-Allow-Origin");
        self.allow_origins(&mut t, origin, credentials, &split, notes);
        if let Some(h) = get("Access-Control-Allow-Methods") {
            t.set(k::ALLOW_METHODS, list(&split(&h.value)));
        }
        if let Some(h) = get("Access-Control-Allow-Headers") {
            t.set(k::ALLOW_HEADERS, list(&split(&h.value)));
        }
        if let Some(h) = get("Access-Control-Expose-Headers") {
            t.set(k::EXPOSE_HEADERS, list(&split(&h.value)));
        }
        if credentials {
            t.set(k::ALLOW_CREDENTIALS, "true".into());
        }
        if let Some(h) = get("Access-Control-Max-Age") {
            if let Some(ms) = h
                .value
                .parse::<u64>()
                .ok()
                .and_then(|s| s.checked_mul(1000))
            {
                let secs = ms / 1000;
                t.set_c(
                    k::MAX_AGE,
                    q(&fmt_duration(ms)),
                    format!("Access-Control-Max-Age {secs}"),
                );
            }
        }
        if preflight.is_none() {
            notes.push("CORS preflights are answered by rampart (204, or 403 for an origin not allowed); nginx passed OPTIONS to the upstream".into());
        }
        if let Some(c) = self.cors.iter().find(|c| c.table.entries == t.entries) {
            return c.name.clone();
        }
        let name = if self.cors.is_empty() {
            "app".to_string()
        } else {
            format!("app{}", self.cors.len() + 1)
        };
        t.header = format!("[cors.{name}]");
        t.lead.push(format!(
            "CORS policy from add_header Access-Control-* ({})",
            all.first().map(|h| self.at(&h.pos)).unwrap_or_default()
        ));
        self.cors.push(Cors {
            name: name.clone(),
            table: t,
        });
        self.counts.cors += 1;
        name
    }

    /// `allow_origins` from `Access-Control-Allow-Origin`: a reflected
    /// origin (`$http_origin`), or `*` with credentials, becomes a
    /// placeholder, warned about.
    fn allow_origins(
        &mut self,
        t: &mut Table,
        origin: Option<Header>,
        credentials: bool,
        split: &dyn Fn(&str) -> Vec<String>,
        notes: &mut Vec<String>,
    ) {
        match origin {
            Some(h) if h.value == "*" && !credentials => {
                t.set(k::ALLOW_ORIGINS, list(&["*".into()]))
            }
            Some(h) if !h.value.contains('$') && h.value != "*" => {
                t.set(k::ALLOW_ORIGINS, list(&split(&h.value)))
            }
            Some(h) => {
                let what = if h.value == "*" {
                    "\"*\" with credentials (browsers refuse it; rampart's check rejects it)"
                        .to_string()
                } else {
                    format!("{} (any site, reflected back)", h.value)
                };
                let msg = format!(
                    "Access-Control-Allow-Origin {what}{}: replaced by the placeholder origin \"{ORIGIN_PLACEHOLDER}\"; list the real front-end origins in allow_origins",
                    if credentials { " with Allow-Credentials true lets every website make credentialed requests" } else { "" }
                );
                self.warn(&h.pos, msg.clone());
                t.set_c(
                    k::ALLOW_ORIGINS,
                    list(&[ORIGIN_PLACEHOLDER.into()]),
                    "PLACEHOLDER: the real front-end origin(s)",
                );
                notes.push(format!("INSECURE in nginx: {msg}"));
            }
            None => {
                t.set_c(
                    k::ALLOW_ORIGINS,
                    list(&[ORIGIN_PLACEHOLDER.into()]),
                    "PLACEHOLDER: nginx sent no Access-Control-Allow-Origin",
                );
            }
        }
    }
}
