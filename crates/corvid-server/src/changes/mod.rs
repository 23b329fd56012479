//! The Changes API: `/databases/{db}/changes` WebSocket connections watch document changes.
//!
//! [`ChangesHub`] keeps one broadcaster (`hub.rs`) per database that has open connections: it
//! subscribes to the database's commit notices and, on its own thread, reads the changes after
//! the last one it published from a snapshot, so the write path pays nothing when nobody
//! watches. Each connection keeps its own [`Watches`] and filters the shared batches; a
//! connection that falls behind the bounded buffer is disconnected instead of queueing without
//! end. `commands.rs` reads the commands clients send.

mod commands;
mod hub;
mod watches;

pub(crate) use commands::{CommandAction, parse_command};
pub use hub::ChangesOptions;
pub(crate) use hub::{ChangeBatch, ChangesHub};
pub(crate) use watches::Watches;
