//! A TCP proxy in front of a real broker, for the failures a test must cause on purpose:
//! the broker gone (every connection closed, new ones closed at once) and the broker's
//! acknowledgements held back (RabbitMQ's `Basic.Ack` frames, JetStream's PubAcks) while the
//! test changes something, then let through.
//!
//! The proxy reads the broker's side of the conversation by its protocol's units (AMQP
//! frames, NATS protocol lines with their payloads), so that it holds back whole units and
//! keeps their order: once an acknowledgement is held, everything after it on that
//! connection waits with it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The broker's protocol, as far as the proxy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// AMQP 0-9-1: frames of type, channel, size, payload, end octet.
    Amqp,
    /// NATS: `\r\n`-terminated lines; `MSG` and `HMSG` followed by their payload.
    Nats,
}

/// A proxy on a loopback port; stopped, with its connections, on drop.
pub struct BrokerProxy {
    pub port: u16,
    control: Arc<Control>,
    task: JoinHandle<()>,
}

struct Control {
    down: watch::Sender<bool>,
    hold_acks: AtomicBool,
    /// Acknowledgements held back now, over every connection.
    held: AtomicUsize,
    /// Acknowledgements held back since the start.
    held_total: AtomicUsize,
    /// Bumped to let every held unit through.
    release: watch::Sender<u64>,
    protocol: Protocol,
    target: SocketAddr,
}

impl BrokerProxy {
    pub async fn start(target: &str, protocol: Protocol) -> BrokerProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let control = Arc::new(Control {
            down: watch::Sender::new(false),
            hold_acks: AtomicBool::new(false),
            held: AtomicUsize::new(0),
            held_total: AtomicUsize::new(0),
            release: watch::Sender::new(0),
            protocol,
            target: target.parse().unwrap(),
        });
        let task = tokio::spawn(accept(listener, control.clone()));
        BrokerProxy {
            port,
            control,
            task,
        }
    }

    /// Down: every connection is closed, and a new one closed as soon as it is accepted.
    pub fn set_down(&self, down: bool) {
        self.control.down.send_replace(down);
    }

    /// Holds back the broker's acknowledgements (and what follows them) from now on.
    pub fn hold_acks(&self) {
        self.control.hold_acks.store(true, Ordering::SeqCst);
    }

    /// Lets through what was held; later acknowledgements are held again while
    /// `keep_holding`.
    pub fn release_acks(&self, keep_holding: bool) {
        self.control.hold_acks.store(keep_holding, Ordering::SeqCst);
        self.control.release.send_modify(|it| *it += 1);
    }

    /// Acknowledgements held back now.
    pub fn held(&self) -> usize {
        self.control.held.load(Ordering::SeqCst)
    }

    /// Acknowledgements held back since the start (released ones included).
    pub fn held_total(&self) -> usize {
        self.control.held_total.load(Ordering::SeqCst)
    }
}

impl Drop for BrokerProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections; the set of their tasks is dropped (they are aborted) with this one.
async fn accept(listener: TcpListener, control: Arc<Control>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        if *control.down.borrow() {
            drop(client);
            continue;
        }
        connections.spawn(serve(client, control.clone()));
    }
}

async fn serve(client: TcpStream, control: Arc<Control>) {
    let Ok(server) = TcpStream::connect(control.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    let mut down = control.down.subscribe();
    tokio::select! {
        _ = tokio::io::copy(&mut client_read, &mut server_write) => {}
        _ = pump(server_read, &mut client_write, &control) => {}
        _ = down.wait_for(|it| *it) => {}
    }
}

/// The broker's side: passed on unit by unit, acknowledgements held back while asked.
async fn pump(
    mut server: OwnedReadHalf,
    client: &mut OwnedWriteHalf,
    control: &Control,
) -> std::io::Result<()> {
    let mut release = control.release.subscribe();
    let mut input: Vec<u8> = Vec::new();
    let mut held: Vec<u8> = Vec::new();
    let mut n_held = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let result = loop {
        tokio::select! {
            read = server.read(&mut buf) => {
                let n = match read {
                    Ok(0) => break Ok(()),
                    Ok(n) => n,
                    Err(error) => break Err(error),
                };
                input.extend_from_slice(&buf[..n]);
                let mut out = Vec::new();
                let mut start = 0;
                while let Some((len, is_ack)) = next_unit(control.protocol, &input[start..]) {
                    let unit = &input[start..start + len];
                    if !held.is_empty() || (is_ack && control.hold_acks.load(Ordering::SeqCst)) {
                        if is_ack {
                            n_held += 1;
                            control.held.fetch_add(1, Ordering::SeqCst);
                            control.held_total.fetch_add(1, Ordering::SeqCst);
                        }
                        held.extend_from_slice(unit);
                    } else {
                        out.extend_from_slice(unit);
                    }
                    start += len;
                }
                input.drain(..start);
                if let Err(error) = client.write_all(&out).await {
                    break Err(error);
                }
            }
            _ = release.changed() => {
                control.held.fetch_sub(n_held, Ordering::SeqCst);
                n_held = 0;
                let flushed = std::mem::take(&mut held);
                if let Err(error) = client.write_all(&flushed).await {
                    break Err(error);
                }
            }
        }
    };
    control.held.fetch_sub(n_held, Ordering::SeqCst);
    result
}

/// The length of the first whole unit of `input`, and whether it is an acknowledgement.
fn next_unit(protocol: Protocol, input: &[u8]) -> Option<(usize, bool)> {
    match protocol {
        Protocol::Amqp => {
            if input.len() < 7 {
                return None;
            }
            let size = u32::from_be_bytes(input[3..7].try_into().unwrap()) as usize;
            let len = 7 + size + 1;
            if input.len() < len {
                return None;
            }
            // A method frame of class 60 (basic), method 80 (ack).
            let is_ack = input[0] == 1 && size >= 4 && input[7..11] == [0, 60, 0, 80];
            Some((len, is_ack))
        }
        Protocol::Nats => {
            let line_end = input.windows(2).position(|it| it == b"\r\n")?;
            let line = std::str::from_utf8(&input[..line_end]).ok()?;
            let mut words = line.split_ascii_whitespace();
            let op = words.next().unwrap_or("");
            if !op.eq_ignore_ascii_case("MSG") && !op.eq_ignore_ascii_case("HMSG") {
                return Some((line_end + 2, false));
            }
            let subject = words.next().unwrap_or("");
            let size: usize = line.split_ascii_whitespace().last()?.parse().ok()?;
            let len = line_end + 2 + size + 2;
            if input.len() < len {
                return None;
            }
            let payload = &input[line_end + 2..line_end + 2 + size];
            // A JetStream PubAck: `{"stream":…,"seq":…}` to the publisher's inbox.
            let is_ack =
                subject.starts_with("_INBOX.") && payload.windows(6).any(|it| it == b"\"seq\":");
            Some((len, is_ack))
        }
    }
}
