//! A real `redis-server` on a loopback port, without persistence, that a
//! test can stop and start again on the same port.

use super::*;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Serving TLS only (`rediss://`), with the test CA's `localhost` leaf.
    tls: bool,
}

impl RedisServer {
    /// Starts `redis-server` (Debian's package; `scripts/test.sh` installs
    /// it) and waits until it answers PING.
    pub fn start() -> RedisServer {
        let mut r = RedisServer {
            port: free_port(),
            child: None,
            tls: false,
        };
        r.start_again();
        r
    }

    /// As [`Self::start`], serving TLS only, with the test CA's
    /// `localhost` certificate.
    pub fn start_tls() -> RedisServer {
        let mut r = RedisServer {
            port: free_port(),
            child: None,
            tls: true,
        };
        r.start_again();
        r
    }

    pub fn url(&self) -> String {
        match self.tls {
            true => format!("rediss://localhost:{}/0", self.port),
            false => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// Kills the server (as a crash would) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is
    /// answered — a hung Redis, which only a timeout can tell from a slow one.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {pid}");
    }

    /// Starts it again on the same port, empty.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let mut cmd = Command::new("redis-server");
        match self.tls {
            true => cmd
                .args(["--port", "0", "--tls-port", &port])
                .args(["--tls-cert-file", &fixture("leaf-chain.pem")])
                .args(["--tls-key-file", &fixture("leaf-key.pem")])
                .args(["--tls-ca-cert-file", &fixture("ca.pem")])
                .args(["--tls-auth-clients", "no"]),
            false => cmd.args(["--port", &port]),
        };
        let child = cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install Debian's redis-server package (scripts/test.sh does, as root)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let up = |r: &Self| match r.tls {
            // No TLS client here: the port accepting is enough.
            true => std::net::TcpStream::connect(("127.0.0.1", r.port)).is_ok(),
            false => r.command(&["PING"]).as_deref() == Some("+PONG"),
        };
        while !up(self) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one command; returns the first line of the answer.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        use std::io::{BufRead, BufReader};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        Some(line.trim_end().to_string())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
