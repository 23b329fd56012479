//! The accept loop's limits over real sockets: idle and slow clients do not keep a normal client
//! out and are closed within their timeout, stalled request bodies are cut, the connection cap
//! holds, and a Changes API WebSocket outlives the idle timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use corvid_server::{AppState, ConnectionOptions, ServerOptions};
use corvid_store::Storage;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const HEADER: Duration = Duration::from_millis(1500);
// Well apart from HEADER + SLACK, so a keep-alive connection closed at the idle timeout is never
// taken for one closed at the header timeout on a loaded machine.
const IDLE: Duration = Duration::from_secs(6);
/// Timers, scheduling and a loaded machine.
const SLACK: Duration = Duration::from_millis(1500);

struct Server {
    address: String,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(max_connections: usize) -> Server {
    corvid_server::raise_open_files_limit().expect("raise the open files limit");
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(dir.path()).expect("storage");
    storage.create_database("db").expect("database");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let etl = corvid_etl::EtlManager::new(corvid_etl::EtlOptions::default());
    let options = ServerOptions {
        connections: ConnectionOptions {
            header_timeout: HEADER,
            idle_timeout: IDLE,
            max_connections,
            certificate: None,
        },
        ..ServerOptions::default()
    };
    let state = AppState::new(Arc::new(storage), etl, options);
    let task = tokio::spawn(async move {
        let _ = corvid_server::serve(listener, state, std::future::pending()).await;
    });
    Server {
        address,
        task,
        _dir: dir,
    }
}

/// A request on a fresh connection (no pool), timed.
async fn normal_request(server: &Server) -> Duration {
    let started = Instant::now();
    let client = corvid_client::http_client_builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client
            .get(format!("http://{}/build/version", server.address))
            .send(),
    )
    .await
    .expect("served in time")
    .expect("request");
    assert_eq!(reply.status(), 200);
    started.elapsed()
}

/// Waits until the server closes `socket` (EOF or reset), discarding what it sends first;
/// returns when, or `None` past `limit`.
async fn closed_within(socket: &mut TcpStream, limit: Duration) -> Option<Instant> {
    let mut buffer = [0_u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn idle_and_slow_header_sockets_do_not_keep_a_client_out_and_are_closed_in_time() {
    let server = start(10_000).await;
    let opened = Instant::now();
    let mut sockets = Vec::new();
    for _ in 0..1_100 {
        sockets.push(TcpStream::connect(&server.address).await.expect("connect"));
    }
    for _ in 0..100 {
        let mut socket = TcpStream::connect(&server.address).await.expect("connect");
        socket
            .write_all(b"GET /build/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await
            .expect("part of a head");
        sockets.push(socket);
    }
    let took = normal_request(&server).await;
    assert!(
        took < Duration::from_secs(1),
        "a normal request took {took:?}"
    );

    let closes = futures_util::future::join_all(
        sockets
            .iter_mut()
            .map(|socket| closed_within(socket, HEADER + SLACK * 2)),
    )
    .await;
    let open = closes.iter().filter(|close| close.is_none()).count();
    assert_eq!(open, 0, "{open} of 1,200 idle or slow sockets still open");
    let last = closes.iter().flatten().max().expect("closes");
    let after = last.duration_since(opened);
    assert!(
        after >= HEADER,
        "closed before the header timeout: {after:?}"
    );
    println!("1,200 sockets closed {after:?} after opening (header timeout {HEADER:?})");
    // The server still serves.
    normal_request(&server).await;
}

#[tokio::test]
async fn a_keep_alive_connection_stays_past_the_header_timeout_and_closes_at_the_idle_timeout() {
    let server = start(10).await;
    let mut socket = TcpStream::connect(&server.address).await.expect("connect");
    socket
        .write_all(b"GET /build/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    let mut buffer = [0_u8; 4096];
    let read = socket.read(&mut buffer).await.expect("response");
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
    let answered = Instant::now();
    assert!(
        closed_within(&mut socket, HEADER + SLACK).await.is_none(),
        "an idle keep-alive connection was closed at the header timeout"
    );
    let closed = closed_within(&mut socket, IDLE)
        .await
        .expect("closed at the idle timeout");
    let after = closed.duration_since(answered);
    assert!(
        after >= IDLE && after < IDLE + SLACK,
        "closed {after:?} after the response"
    );
}

#[tokio::test]
async fn a_request_head_sent_slowly_on_a_keep_alive_connection_is_cut_at_the_header_timeout() {
    let server = start(10).await;
    let mut socket = TcpStream::connect(&server.address).await.expect("connect");
    socket
        .write_all(b"GET /build/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    let mut buffer = [0_u8; 4096];
    let read = socket.read(&mut buffer).await.expect("response");
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    socket
        .write_all(b"GET /build/version HTTP/1.1\r\n")
        .await
        .expect("part of a head");
    let mut closed = None;
    // One header line a while, each well within the idle timeout.
    for _ in 0..10 {
        if let Some(at) = closed_within(&mut socket, Duration::from_millis(400)).await {
            closed = Some(at);
            break;
        }
        let _ = socket.write_all(b"X-Slow: 1\r\n").await;
    }
    let after = closed.expect("closed").duration_since(started);
    assert!(
        after >= HEADER && after < HEADER + SLACK,
        "closed {after:?} after the head began"
    );
}

#[tokio::test]
async fn a_stalled_request_body_is_cut_at_the_idle_timeout() {
    let server = start(10).await;
    let mut socket = TcpStream::connect(&server.address).await.expect("connect");
    socket
        .write_all(
            b"PUT /databases/db/docs?id=users/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"Name\":",
        )
        .await
        .expect("half a request");
    let started = Instant::now();
    let closed = closed_within(&mut socket, IDLE + SLACK)
        .await
        .expect("closed at the idle timeout");
    let after = closed.duration_since(started);
    assert!(after >= IDLE, "closed {after:?} after the body stalled");
}

#[tokio::test]
async fn a_client_that_stops_reading_its_response_is_cut_at_the_idle_timeout() {
    let server = start(10).await;
    // A streamed response (its body is produced as the client takes it, so the request stays
    // in flight) of two 4 MiB documents: more than the socket buffers on both ends hold.
    let client = corvid_client::http_client_builder()
        .build()
        .expect("client");
    let big = "x".repeat(4 << 20);
    for id in ["big/1", "big/2"] {
        let reply = client
            .put(format!(
                "http://{}/databases/db/docs?id={id}",
                server.address
            ))
            .json(&json!({"Data": big}))
            .send()
            .await
            .expect("put");
        assert_eq!(reply.status(), 201);
    }
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut socket = socket
        .connect(server.address.parse().expect("address"))
        .await
        .expect("connect");
    socket
        .write_all(b"GET /databases/db/streams/docs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    // Read nothing for longer than the idle timeout.
    tokio::time::sleep(IDLE + SLACK * 2).await;
    let mut received = 0_usize;
    let mut buffer = vec![0_u8; 1 << 16];
    let ended = tokio::time::timeout(SLACK * 4, async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received += n,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection is still open");
    assert!(
        received < 8 << 20,
        "the whole response arrived ({received} bytes): nothing was cut"
    );
    // The server serves others meanwhile and after.
    normal_request(&server).await;
}

#[tokio::test]
async fn past_the_connection_cap_a_client_waits_for_a_free_slot() {
    let server = start(2).await;
    let _idle = [
        TcpStream::connect(&server.address).await.expect("connect"),
        TcpStream::connect(&server.address).await.expect("connect"),
    ];
    // Both slots are taken until the idle sockets time out.
    let took = normal_request(&server).await;
    assert!(
        took >= HEADER - Duration::from_millis(200),
        "served in {took:?} past the cap"
    );
}

#[tokio::test]
async fn a_websocket_holds_its_place_under_the_connection_cap() {
    let server = start(2).await;
    let url = format!("ws://{}/databases/db/changes", server.address);
    let (first, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("websocket");
    let (_second, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("websocket");
    // Both places are taken by the WebSockets, which outlive every timeout.
    let client = corvid_client::http_client_builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let url = format!("http://{}/build/version", server.address);
    let waited = tokio::time::timeout(HEADER + SLACK, client.get(&url).send()).await;
    assert!(waited.is_err(), "served past the cap: {waited:?}");
    // A WebSocket that closes frees its place.
    drop(first);
    let reply = tokio::time::timeout(Duration::from_secs(5), client.get(&url).send())
        .await
        .expect("served once a place is free")
        .expect("request");
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn a_changes_websocket_outlives_the_idle_timeout() {
    let server = start(10).await;
    let url = format!("ws://{}/databases/db/changes", server.address);
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
    let command = json!({"CommandId": 1, "Command": "watch-doc", "Param": "users/1"});
    socket
        .send(Message::text(command.to_string()))
        .await
        .expect("watch");
    let _confirm = socket.next().await.expect("confirm").expect("frame");
    tokio::time::sleep(IDLE + SLACK).await;
    let reply = corvid_client::http_client_builder()
        .build()
        .unwrap()
        .put(format!(
            "http://{}/databases/db/docs?id=users/1",
            server.address
        ))
        .body(r#"{"Name":"a"}"#)
        .send()
        .await
        .expect("put");
    assert_eq!(reply.status(), 201);
    let change = loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a change in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = message {
            break serde_json::from_str::<Value>(text.as_str()).expect("json");
        }
    };
    assert_eq!(change[0]["Value"]["Id"], "users/1", "{change}");
}
