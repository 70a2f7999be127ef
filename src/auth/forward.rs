//! Forward authentication (nginx `auth_request`, Traefik `forwardAuth`, the
//! oauth2-proxy pattern): before a request is admitted, rampart asks an
//! auth service with a `GET` describing it, and the service's status
//! decides. The connections to the service are pooled by pingora's
//! HTTP/1 connector, one per `[auth.*]` table and configuration.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use pingora::connectors::http::v1::Connector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::upstreams::peer::HttpPeer;

use crate::headers::{
    ip_value, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_METHOD, X_FORWARDED_PROTO,
    X_FORWARDED_URI,
};

/// The largest auth answer body rampart passes on (a login page, a JSON
/// error); a longer one is an auth error.
const MAX_ANSWER_BODY: usize = 64 * 1024;

/// Idle connections to the auth service are kept this long.
const IDLE: Duration = Duration::from_secs(60);

/// An auth service, as compiled from `forward = "http://..."`.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The service's address (resolved at load, and again every
    /// `resolve_interval` when the URL names a host) with its TLS name for
    /// `https`; `None` while its name does not resolve (every request then
    /// gets 500). Built once: every auth request connects to it.
    /// (Boxed: a peer is large, and most auth tables are htpasswd ones.)
    pub peer: Option<Box<HttpPeer>>,
    /// `host:port` when the URL names a host rather than an address: looked
    /// up again as upstream names are (`upstream::resolver`).
    pub name: Option<String>,
    /// The `Host` of the auth request (the URL's authority).
    pub host: HeaderValue,
    /// The URL's path and query.
    pub path: String,
    /// Headers of a 2xx answer copied onto the admitted request.
    pub copy_headers: Vec<HeaderName>,
    pub timeout: Duration,
}

/// What the request being admitted looks like to the auth service.
pub struct Original<'a> {
    pub method: &'a str,
    /// Path and query as the client sent them.
    pub uri: &'a str,
    pub host: Option<&'a HeaderValue>,
    pub client_ip: Option<IpAddr>,
    pub tls: bool,
    /// The client's cookies (an HTTP/2 client's several fields joined).
    pub cookie: Option<HeaderValue>,
    pub authorization: Option<&'a HeaderValue>,
}

/// The service's decision.
#[derive(Debug)]
pub enum Decision {
    /// 2xx: the request goes on, with `copy_headers` set to these values
    /// (`None`: the answer lacked it, so the request must not carry it).
    Admit(Vec<(HeaderName, Option<HeaderValue>)>),
    /// 401 or 403: returned to the client as it is.
    Refuse(Refusal),
    /// Any other answer, no answer in time, or no connection: a 500.
    Failed(String),
}

/// A 401/403 answer of the auth service, passed on to the client.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// The answer headers a refusal passes on: how to log in and where.
const REFUSAL_HEADERS: [HeaderName; 4] = [
    header::WWW_AUTHENTICATE,
    header::LOCATION,
    header::SET_COOKIE,
    header::CONTENT_TYPE,
];

impl Forward {
    /// The peer of `addr`; `tls_name` (the name to verify and send as SNI)
    /// for `https`.
    pub fn peer_of(addr: Option<SocketAddr>, tls_name: Option<String>) -> Option<Box<HttpPeer>> {
        let tls = tls_name.is_some();
        addr.map(|a| Box::new(HttpPeer::new(a, tls, tls_name.unwrap_or_default())))
    }

    /// Asks the service about `original`, within `timeout`.
    pub async fn ask(&self, connector: &Connector, original: &Original<'_>) -> Decision {
        match tokio::time::timeout(self.timeout, self.exchange(connector, original)).await {
            Ok(Ok(decision)) => decision,
            Ok(Err(e)) => Decision::Failed(e),
            Err(_) => Decision::Failed(format!("no answer within {:?}", self.timeout)),
        }
    }

    async fn exchange(
        &self,
        connector: &Connector,
        original: &Original<'_>,
    ) -> Result<Decision, String> {
        let peer: &HttpPeer = self
            .peer
            .as_deref()
            .ok_or("the auth service's name did not resolve at load")?;
        let request = self
            .request(original)
            .map_err(|e| format!("building the request: {e}"))?;
        let (mut session, _reused) = connector
            .get_http_session(peer)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        session
            .write_request_header(Box::new(request))
            .await
            .map_err(|e| format!("sending: {e}"))?;
        session
            .finish_body()
            .await
            .map_err(|e| format!("sending: {e}"))?;
        let head = loop {
            let head = session
                .read_resp_header_parts()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?;
            if !head.status.is_informational() {
                break head;
            }
        };
        let status = head.status.as_u16();
        let body = read_body(&mut session).await?;
        connector
            .release_http_session(session, peer, Some(IDLE))
            .await;
        Ok(match status {
            200..=299 => Decision::Admit(self.copied(&head)),
            401 | 403 => Decision::Refuse(Refusal {
                status,
                headers: refusal_headers(&head),
                body,
            }),
            other => Decision::Failed(format!("the auth service answered {other}")),
        })
    }

    fn request(&self, o: &Original<'_>) -> pingora::Result<RequestHeader> {
        let mut req = RequestHeader::build("GET", self.path.as_bytes(), Some(8))?;
        req.insert_header(header::HOST, self.host.clone())?;
        req.insert_header(&X_FORWARDED_METHOD, o.method)?;
        req.insert_header(&X_FORWARDED_URI, o.uri)?;
        let proto = HeaderValue::from_static(if o.tls { "https" } else { "http" });
        req.insert_header(&X_FORWARDED_PROTO, proto)?;
        if let Some(h) = o.host {
            req.insert_header(&X_FORWARDED_HOST, h.clone())?;
        }
        if let Some(ip) = o.client_ip {
            req.insert_header(&X_FORWARDED_FOR, ip_value(ip))?;
        }
        if let Some(c) = &o.cookie {
            req.insert_header(header::COOKIE, c.clone())?;
        }
        if let Some(a) = o.authorization {
            req.insert_header(header::AUTHORIZATION, a.clone())?;
        }
        Ok(req)
    }

    fn copied(&self, head: &ResponseHeader) -> Vec<(HeaderName, Option<HeaderValue>)> {
        self.copy_headers
            .iter()
            .map(|name| (name.clone(), head.headers.get(name).cloned()))
            .collect()
    }
}

fn refusal_headers(head: &ResponseHeader) -> Vec<(HeaderName, HeaderValue)> {
    REFUSAL_HEADERS
        .iter()
        .flat_map(|name| {
            head.headers
                .get_all(name)
                .iter()
                .map(move |v| (name.clone(), v.clone()))
        })
        .collect()
}

async fn read_body(
    session: &mut pingora::protocols::http::v1::client::HttpSession,
) -> Result<Bytes, String> {
    let mut body = BytesMut::new();
    while let Some(chunk) = session
        .read_body_ref()
        .await
        .map_err(|e| format!("reading the answer's body: {e}"))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BODY {
            return Err(format!("the answer's body is over {MAX_ANSWER_BODY} bytes"));
        }
        body.extend_from_slice(chunk);
    }
    Ok(body.freeze())
}

/// A `forward` URL, taken apart.
#[derive(Debug, PartialEq, Eq)]
pub struct ServiceUrl {
    pub tls: bool,
    /// The host as in the URL (an IPv6 address in brackets).
    pub host: String,
    pub port: u16,
    /// The authority as written: the auth request's `Host`.
    pub authority: String,
    pub path: String,
}

impl ServiceUrl {
    /// `http://` or `https://` URLs with a host, without user info.
    pub fn parse(url: &str) -> Result<ServiceUrl, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err("must start with http:// or https://".into()),
        };
        let authority = uri.authority().ok_or("has no host")?;
        if authority.as_str().contains('@') {
            return Err("must not hold user info".into());
        }
        Ok(ServiceUrl {
            tls,
            host: authority.host().to_string(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: authority.as_str().to_string(),
            path: uri
                .path_and_query()
                .map_or("/".to_string(), |p| p.as_str().to_string()),
        })
    }

    /// `host:port`, as the resolve stage looks it up.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls() {
        let u = ServiceUrl::parse("http://127.0.0.1:4180/oauth2/auth?x=1").unwrap();
        assert_eq!(
            (u.tls, u.port, u.path.as_str()),
            (false, 4180, "/oauth2/auth?x=1")
        );
        assert_eq!(u.host_port(), "127.0.0.1:4180");
        let u = ServiceUrl::parse("https://auth.example").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/"));
        let u = ServiceUrl::parse("http://[::1]/a").unwrap();
        assert_eq!(u.host_port(), "[::1]:80");
        for bad in ["ftp://a/", "/oauth2/auth", "http://u:p@a/", "not a url"] {
            assert!(ServiceUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
