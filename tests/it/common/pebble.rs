//! A real ACME server: Let's Encrypt's `pebble` (Debian's package), with
//! `pebble-challtestsrv` as its DNS server answering 127.0.0.1 for every
//! name, on loopback ports. Its own HTTPS certificate is the test CA's
//! `localhost` leaf (so `[acme] ca` is `tests/fixtures/ca.pem`); the
//! certificates it issues chain to a root made at each start
//! ([`Pebble::issuing_root`]).

use super::*;

pub struct Pebble {
    pub port: u16,
    pub management: u16,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Pebble {
    /// Validates HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`
    /// (rampart's listeners), for real (no `PEBBLE_VA_ALWAYS_VALID`), and
    /// every authorization anew.
    pub fn start(http_port: u16, tls_port: u16) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        let (port, management, dns, dns_management) =
            (free_port(), free_port(), free_port(), free_port());
        let config = dir.path().join("pebble.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"pebble": {{"listenAddress": "127.0.0.1:{port}",
                "managementListenAddress": "127.0.0.1:{management}",
                "certificate": "{}", "privateKey": "{}",
                "httpPort": {http_port}, "tlsPort": {tls_port},
                "ocspResponderURL": "", "externalAccountBindingRequired": false,
                "retryAfter": {{"authz": 1, "order": 1}}}}}}"#,
                fixture("leaf-chain.pem"),
                fixture("leaf-key.pem"),
            ),
        )
        .unwrap();
        let missing = |e: std::io::Error| -> Child {
            panic!("cannot start pebble ({e}): install Debian's pebble package (scripts/test.sh does, as root)")
        };
        let dns_server = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(missing);
        let log = std::fs::File::create(dir.path().join("pebble.log")).unwrap();
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env("PEBBLE_VA_ALWAYS_VALID", "0")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(missing);
        let p = Pebble {
            port,
            management,
            children: vec![pebble, dns_server],
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", management)).is_err()
        {
            assert!(Instant::now() < deadline, "pebble did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The root its certificates chain to (PEM).
    pub async fn issuing_root(&self) -> String {
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.pem")).unwrap()).unwrap();
        let c = reqwest::Client::builder()
            .no_proxy()
            .add_root_certificate(ca)
            .build()
            .unwrap();
        let r = c
            .get(format!("https://127.0.0.1:{}/roots/0", self.management))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// What pebble logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("pebble.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}
