//! Hostile and careless clients (issue 15): a client that sends its headers a byte at a time,
//! an upload that stalls, more connections than `max_connections`, oversized or too many
//! headers, and a crowd of idle and slow connections beside a client that wants a quick answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{close, id_of, ImageServer, Shape};

/// Reads from `stream` until the server closes it (or `limit` passes); returns what it sent and
/// whether it closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// Sends one `HEAD path` on a keep-alive connection and reads the answer's head.
fn head_on(stream: &mut TcpStream, path: &str) -> String {
    write!(stream, "HEAD {path} HTTP/1.1\r\nHost: glint\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).unwrap();
        assert_eq!(n, 1, "connection closed mid-answer: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[test]
fn a_client_sending_its_headers_a_byte_at_a_time_is_cut_off_at_the_header_timeout() {
    let srv = ImageServer::start(Shape::Serve, &[("GLINT_CLIENT_HEADER_TIMEOUT", "2")]);
    let mut slow = TcpStream::connect(srv.addr()).unwrap();
    slow.write_all(b"GET /v1/images HTTP/1.1\r\nHost: glint\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    let mut cut_off = false;
    while started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(250));
        if slow.write_all(b"a").is_err() {
            cut_off = true;
            break;
        }
        // Other clients are served meanwhile.
        assert_eq!(srv.get("/versions").status.as_u16(), 200);
        let mut probe = [0u8; 1];
        slow.set_nonblocking(true).unwrap();
        let closed = matches!(slow.read(&mut probe), Ok(0) | Ok(1));
        slow.set_nonblocking(false).unwrap();
        if closed {
            cut_off = true;
            break;
        }
    }
    let took = started.elapsed();
    assert!(
        cut_off,
        "the slow client was still connected after {took:?}"
    );
    assert!(
        took < Duration::from_secs(6),
        "cut off only after {took:?} with a 2 s header timeout"
    );
}

#[test]
fn an_upload_that_stalls_is_killed_after_the_socket_timeout() {
    let srv = ImageServer::start(Shape::Serve, &[("GLINT_CLIENT_SOCKET_TIMEOUT", "2")]);
    let id = uuid::Uuid::new_v4().to_string();
    let mut stalled = srv.start_upload(&id, &[], 1 << 20, 64 << 10);
    assert_eq!(
        srv.wait_status(&id, "saving", Duration::from_secs(10)),
        "saving"
    );
    let (answer, closed) = read_until_closed(&mut stalled, Duration::from_secs(10));
    assert!(
        closed,
        "the stalled upload's connection is still open: {answer}"
    );
    assert_eq!(
        srv.wait_status(&id, "killed", Duration::from_secs(10)),
        "killed",
        "{}",
        srv.logs()
    );
    srv.assert_no_data_for(&id);
    close(stalled);
}

#[test]
fn connections_beyond_max_connections_get_a_503_that_says_so() {
    let srv = ImageServer::start(Shape::Serve, &[("GLINT_MAX_CONNECTIONS", "8")]);
    // Eight open connections, each proven accepted by an answered request.
    let mut held: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(srv.addr()).unwrap();
            assert!(head_on(&mut s, "/versions").starts_with("HTTP/1.1 200"));
            s
        })
        .collect();
    let mut extra = TcpStream::connect(srv.addr()).unwrap();
    extra
        .write_all(b"GET /versions HTTP/1.1\r\nHost: glint\r\n\r\n")
        .unwrap();
    let (answer, closed) = read_until_closed(&mut extra, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("max_connections"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    assert!(closed, "the refused connection was left open");
    // The held connections still work, and a freed place is taken again.
    assert!(head_on(&mut held[0], "/versions").starts_with("HTTP/1.1 200"));
    held.truncate(4);
    let served = crate::support::eventually(Duration::from_secs(5), || {
        srv.try_request("GET", "/versions", &[], crate::support::Payload::Empty)
            .is_ok_and(|r| r.status.as_u16() == 200)
    });
    assert!(served, "no connection served after places were freed");
}

#[test]
fn oversized_header_lines_and_too_many_headers_answer_431() {
    let srv = ImageServer::start(Shape::Serve, &[("GLINT_MAX_HEADER_LINE", "4096")]);
    let long = "x".repeat(5000);
    let reply = srv.get_with("/v1/images", &[("x-long", long.as_str())]);
    assert_eq!(reply.status.as_u16(), 431, "{reply:?}");
    assert!(reply.text().contains("max_header_line"), "{}", reply.text());
    // Just under the limit is fine.
    let fits = "x".repeat(4000);
    assert_eq!(
        srv.get_with("/v1/images", &[("x-long", fits.as_str())])
            .status
            .as_u16(),
        200
    );
    // More headers than the Images API takes (256).
    let mut raw = TcpStream::connect(srv.addr()).unwrap();
    let mut request = String::from("GET /v1/images HTTP/1.1\r\nHost: glint\r\n");
    for i in 0..300 {
        request.push_str(&format!("x-h{i}: v\r\n"));
    }
    request.push_str("\r\n");
    raw.write_all(request.as_bytes()).unwrap();
    let (answer, _) = read_until_closed(&mut raw, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
}

#[test]
fn a_head_answers_within_50_ms_p99_beside_1000_idle_connections_and_100_slow_uploads() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    // This test holds over a thousand sockets itself.
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
    let open_files = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        open_files >= 2500,
        "the open-files limit ({open_files}) is too low for this test"
    );

    let srv = ImageServer::start(Shape::Serve, &[]);
    let image = id_of(&srv.create_with_data(&[], b"quick"));
    let path = format!("/v1/images/{image}");
    // A thousand keep-alive connections, each used once and then left idle.
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = TcpStream::connect(srv.addr()).unwrap();
            assert!(head_on(&mut s, "/versions").starts_with("HTTP/1.1 200"));
            s
        })
        .collect();
    // A hundred uploads that trickle in (a few bytes every 100 ms) for the whole test.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut slow: Vec<TcpStream> = (0..100)
        .map(|_| srv.start_upload(&uuid::Uuid::new_v4().to_string(), &[], 1 << 20, 16))
        .collect();
    let trickle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for s in &mut slow {
                    let _ = s.write_all(b"0123456789abcdef");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            slow
        })
    };
    let mut client = TcpStream::connect(srv.addr()).unwrap();
    client.set_nodelay(true).unwrap();
    let mut times: Vec<Duration> = (0..300)
        .map(|_| {
            let started = Instant::now();
            let head = head_on(&mut client, &path);
            let took = started.elapsed();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            took
        })
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let slow = trickle.join().unwrap();
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    eprintln!(
        "HEAD beside 1000 idle and 100 slow connections: median {:?}, p99 {p99:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    drop(idle);
    drop(slow);
}
