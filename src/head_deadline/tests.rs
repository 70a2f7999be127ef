use super::*;

/// The head-end search written as the plain byte-by-byte state
/// machine, lines counted one by one.
fn head_end_bytewise(state: u8, bytes: &[u8]) -> Scanned {
    let mut out = Scanned {
        end: None,
        state,
        newlines: 0,
        leading_blank: 0,
    };
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            out.newlines += 1;
            out.leading_blank += usize::from(out.state == at::BEFORE);
        }
        out.state = step(out.state, b);
        if out.state == at::END {
            out.end = Some(i);
            break;
        }
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
    /// Heads made of CR/LF-heavy pieces, cut anywhere: the same end, the
    /// same carried state and the same line counts as the state
    /// machine, read after read.
    #[test]
    fn head_end_agrees_with_the_state_machine(
        pieces in proptest::collection::vec(
            proptest::sample::select(vec!["\r", "\n", "\r\n", "a:", "\r\n\r", "\n\r", "b"]),
            0..30,
        ),
        cuts in proptest::collection::vec(0usize..80, 0..6),
    ) {
        let bytes = pieces.concat().into_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= bytes.len()).collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let (mut fast, mut slow) = (at::BEFORE, at::BEFORE);
        for w in cuts.windows(2) {
            let piece = &bytes[w[0]..w[1]];
            let (a, b) = (head_end(fast, piece), head_end_bytewise(slow, piece));
            proptest::prop_assert_eq!(&a, &b);
            if a.end.is_some() {
                break;
            }
            (fast, slow) = (a.state, b.state);
        }
    }

    /// Whole heads as httparse (pingora's parser) reads them: where it
    /// says complete, the watch says the head ended at the same byte.
    #[test]
    fn head_end_is_where_httparse_ends_the_head(
        blank in proptest::sample::select(vec!["", "\r\n", "\n", "\r\n\r\n", "\n\n\r\n"]),
        eol in proptest::collection::vec(proptest::sample::select(vec!["\r\n", "\n"]), 4),
        extra in proptest::collection::vec(proptest::sample::select(vec!["X-A: 1", "B:2", "C:"]), 0..4),
    ) {
        let mut head = format!("{blank}GET /x HTTP/1.1{}Host: a{}", eol[0], eol[1]);
        for (k, h) in extra.iter().enumerate() {
            head.push_str(h);
            head.push_str(eol[(k + 2) % 4]);
        }
        head.push_str(eol[3]);
        let full = format!("{head}GET /next HTTP/1.1\r\n\r\n");
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let parsed = httparse::Request::new(&mut headers).parse(full.as_bytes());
        let Ok(httparse::Status::Complete(n)) = parsed else {
            return Err(proptest::test_runner::TestCaseError::fail(format!("{parsed:?}")));
        };
        proptest::prop_assert_eq!(n, head.len());
        proptest::prop_assert_eq!(head_end(at::BEFORE, full.as_bytes()).end, Some(n - 1));
    }
}

fn phase_after(chunks: &[&[u8]]) -> &'static str {
    let (a, _b) = tokio::io::duplex(64);
    let mut h = HeadDeadline::new(
        Box::new(DuplexIo(a)),
        Duration::from_secs(1),
        Arc::new(No431),
    );
    for c in chunks {
        let _ = h.observe(c);
    }
    match h.phase {
        Phase::Idle => "idle",
        Phase::Head { .. } => "head",
        Phase::Rest => "rest",
        Phase::Tunnel => "tunnel",
        Phase::Preface { .. } => "preface",
    }
}

#[derive(Debug)]
struct No431;
impl TooLarge for No431 {
    fn answer(&self, _: Option<std::net::SocketAddr>, _: bool) -> Vec<u8> {
        Vec::new()
    }
}

#[derive(Debug)]
struct DuplexIo(tokio::io::DuplexStream);
impl AsyncRead for DuplexIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}
impl AsyncWrite for DuplexIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
#[async_trait]
impl Shutdown for DuplexIo {
    async fn shutdown(&mut self) {}
}
impl UniqueID for DuplexIo {
    fn id(&self) -> UniqueIDType {
        0
    }
}
impl Ssl for DuplexIo {}
impl GetTimingDigest for DuplexIo {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        vec![]
    }
}
impl GetProxyDigest for DuplexIo {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        None
    }
}
impl GetSocketDigest for DuplexIo {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        None
    }
}
impl Peek for DuplexIo {}

#[test]
fn interim_responses_leave_the_body_to_come_alone() {
    let (a, _b) = tokio::io::duplex(64);
    let mut h = HeadDeadline::new(
        Box::new(DuplexIo(a)),
        Duration::from_secs(1),
        Arc::new(No431),
    );
    let _ = h.observe(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
    assert!(matches!(h.phase, Phase::Rest));
    h.on_response(b"HTTP/1.1 100 Continue\r\n\r\n");
    h.on_response(b"HTTP/1.1 103 Early Hints\r\n\r\n");
    // The body after a 100 is not a head, however large.
    assert!(h.observe(&[b'a'; 100 * 1024]).is_ok());
    assert!(matches!(h.phase, Phase::Rest));
    h.on_response(b"HTTP/1.1 200 OK\r\n\r\n");
    // A body still read after the response (drained, or forwarded to an
    // upstream that answered early) is not a head either.
    assert!(h.observe(b"{\"a\": 1}\n\x00\x01 binary").is_ok());
    assert!(matches!(h.phase, Phase::Rest));
    h.next_request(&[]);
    assert!(matches!(h.phase, Phase::Idle));
    let _ = h.observe(b"GET / HTTP/1.1\r\n\r\n");
    h.on_response(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    assert!(matches!(h.phase, Phase::Tunnel));
}

#[test]
fn finds_the_end_of_the_head_across_reads() {
    assert_eq!(phase_after(&[]), "idle");
    assert_eq!(phase_after(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]), "rest");
    assert_eq!(phase_after(&[b"GET / HTTP/1.1\r\nHost: a\r\n"]), "head");
    assert_eq!(
        phase_after(&[b"GET / HTTP/1.1\r\nHost: a\r", b"\n\r", b"\n"]),
        "rest"
    );
    assert_eq!(phase_after(&[b"GET / HTTP/1.1\r\n\r\r\n\r\n"]), "rest");
    // Bare LF line ends, as pingora's parser accepts them.
    assert_eq!(phase_after(&[b"GET / HTTP/1.1\nHost: a\n\n"]), "rest");
    assert_eq!(
        phase_after(&[b"GET / HTTP/1.1\nHost: a\n", b"\r", b"\n"]),
        "rest"
    );
    // Blank lines before the request line start the clock but do not end the head.
    assert_eq!(phase_after(&[b"\r\n\r\n"]), "head");
    assert_eq!(
        phase_after(&[b"\r\n\r\n\n\n", b"GET / HTTP/1.1\r\n"]),
        "head"
    );
    assert_eq!(phase_after(&[b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"]), "rest");
    assert_eq!(phase_after(&[b"G", b"E", b"T"]), "head");
    assert_eq!(
        phase_after(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]),
        "tunnel"
    );
}

#[test]
fn an_h2_preface_ends_the_watch_once_whole() {
    let (a, _b) = tokio::io::duplex(64);
    let mut h = HeadDeadline::h2_preface(Box::new(DuplexIo(a)), Duration::from_secs(1));
    assert!(h.observe(b"PRI * HTTP/2.0\r\n").is_ok());
    assert!(matches!(h.phase, Phase::Preface { left: 8, .. }));
    assert!(h.observe(b"\r\nSM\r\n\r\n\x00\x00").is_ok());
    assert!(matches!(h.phase, Phase::Tunnel));
}

#[tokio::test(start_paused = true)]
async fn an_h2_preface_not_complete_by_the_deadline_fails_the_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, mut b) = tokio::io::duplex(64);
    let mut h = HeadDeadline::h2_preface(Box::new(DuplexIo(a)), Duration::from_secs(1));
    b.write_all(b"PRI * HTTP/2.0").await.unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(h.read(&mut buf).await.unwrap(), 14);
    let err = h.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn an_upgrade_ends_the_watch() {
    let (a, _b) = tokio::io::duplex(64);
    let mut h = HeadDeadline::new(
        Box::new(DuplexIo(a)),
        Duration::from_secs(1),
        Arc::new(No431),
    );
    assert!(h
        .observe(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
        .is_ok());
    h.on_response(b"HTTP/1.1 101 Switching Protocols\r\n");
    assert!(matches!(h.phase, Phase::Tunnel));
    assert!(
        h.observe(&vec![0u8; MAX_HEAD * 2]).is_ok(),
        "frames are never taken for a head"
    );
    let (a, _b) = tokio::io::duplex(64);
    let mut h = HeadDeadline::new(
        Box::new(DuplexIo(a)),
        Duration::from_secs(1),
        Arc::new(No431),
    );
    assert!(h.observe(b"GET / HTTP/1.1\r\n\r\n").is_ok());
    h.on_response(b"HTTP/1.1 200 OK\r\n");
    assert!(
        matches!(h.phase, Phase::Rest),
        "until the next request begins"
    );
    h.next_request(b"GET /pipelined HTTP/1.1\r\nHo");
    assert!(
        matches!(h.phase, Phase::Head { .. }),
        "keepalive: the next head is watched, pipelined bytes included"
    );
    let mut oversized = b"GET /pipelined HTTP/1.1\r\n".to_vec();
    for i in 0..MAX_FIELDS + 2 {
        oversized.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    h.next_request(&oversized);
    assert!(
        h.refused,
        "a pipelined head over the limits is refused at its next read"
    );
}

#[tokio::test]
async fn a_peek_waits_for_bytes_and_hands_them_to_the_next_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, mut b) = tokio::io::duplex(4096);
    let mut h = HeadDeadline::new(
        Box::new(DuplexIo(a)),
        Duration::from_secs(1),
        Arc::new(No431),
    );
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        b
    });
    let mut first = [0u8; 1];
    assert!(h.try_peek(&mut first).await.unwrap());
    assert_eq!(&first, b"G");
    assert!(
        matches!(h.phase, Phase::Idle),
        "peeked bytes are not read yet"
    );
    const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut head = vec![0u8; 64];
    let mut got = 0;
    // Reads smaller than what was peeked get it in pieces, in order.
    for _ in 0..10 {
        if got == HEAD.len() {
            break;
        }
        let n = h.read(&mut head[got..got + 10]).await.unwrap();
        assert!(n > 0);
        got += n;
    }
    assert_eq!(&head[..got], HEAD);
    assert!(
        matches!(h.phase, Phase::Rest),
        "the watch saw the whole head"
    );
    let b = writer.await.unwrap();
    drop(b);
    assert!(
        h.try_peek(&mut first).await.unwrap(),
        "a closed peer ends the wait"
    );
    assert_eq!(
        h.read(&mut head).await.unwrap(),
        0,
        "and reads as end of stream"
    );
}

#[test]
fn heads_over_the_limit_are_refused() {
    let fresh = || {
        let (a, _b) = tokio::io::duplex(64);
        HeadDeadline::new(
            Box::new(DuplexIo(a)),
            Duration::from_secs(1),
            Arc::new(No431),
        )
    };
    let line = b"GET / HTTP/1.1\r\n";
    let mut head = line.to_vec();
    head.resize(MAX_HEAD - 4, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        fresh().observe(&head),
        Ok(()),
        "exactly MAX_HEAD is accepted"
    );
    let mut h = fresh();
    let mut head = line.to_vec();
    head.resize(MAX_HEAD, b'a');
    assert_eq!(h.observe(&head), Ok(()));
    assert_eq!(
        h.observe(b"a"),
        Err(431),
        "one byte more without an end is refused"
    );
    let mut h = fresh();
    assert_eq!(h.observe(&b"\r\n".repeat(MAX_HEAD / 2)), Ok(()));
    assert_eq!(
        h.observe(b"\r\n"),
        Err(431),
        "blank lines count toward the limit"
    );
    // 100 fields pass, 101 do not, in one read or line by line.
    let fields = |n: usize| {
        let mut h = line.to_vec();
        for i in 0..n {
            h.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        h.extend_from_slice(b"\r\n");
        h
    };
    assert_eq!(fresh().observe(&fields(MAX_FIELDS)), Ok(()));
    assert_eq!(fresh().observe(&fields(MAX_FIELDS + 1)), Err(431));
    let mut h = fresh();
    let whole = fields(MAX_FIELDS + 1);
    let verdicts: Vec<_> = whole.chunks(7).map(|c| h.observe(c)).collect();
    assert!(verdicts.contains(&Err(431)));
    let mut blank_first = b"\r\n\r\n".to_vec();
    blank_first.extend_from_slice(&fields(MAX_FIELDS));
    assert_eq!(fresh().observe(&blank_first), Ok(()));
}

/// The request line's form is pingora's parser's to judge
/// (`strict_request_line`); the watch only times and sizes the head.
#[test]
fn request_lines_are_not_the_watchs_business() {
    let (a, _b) = tokio::io::duplex(64);
    let mut h = HeadDeadline::new(
        Box::new(DuplexIo(a)),
        Duration::from_secs(1),
        Arc::new(No431),
    );
    assert_eq!(h.observe(b"GET /a b\x01 HTTP/1.1\r\n\r\n"), Ok(()));
    assert!(matches!(h.phase, Phase::Rest));
}
