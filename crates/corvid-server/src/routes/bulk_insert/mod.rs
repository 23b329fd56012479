//! Bulk insert, RavenDB's fastest write path: `POST /databases/{db}/bulk_insert?id=` streams an
//! array of commands that is applied while it is still arriving, as the operation `id` (see
//! `crate::operations`). `commands.rs` reads the stream, `apply.rs` applies it in pipelined
//! chunks, `handler.rs` is the route.

mod apply;
mod commands;
mod handler;

pub(crate) use handler::bulk_insert;
