//! Patches, RavenDB's way: a JavaScript function of a document (`this`) and arguments
//! (`args`), run in corvid-script's sandbox (patch mode) with the same time and memory caps as
//! ETL scripts. Used by `PATCH /docs` (one patch), `PATCH` commands of `bulk_docs` (see
//! [`batch`]) and patch by query (see [`by_query`]).
//!
//! A transaction is planned on a blocking thread from one snapshot: ordinary operations and
//! patches in order, each patch reading documents as the earlier operations left them, its
//! script's `put`/`del` becoming operations of the same transaction. A patched document read
//! from the snapshot is written with the change vector it was read with as the expected one,
//! so a concurrent write between the read and the write is never lost: the store refuses the
//! transaction, and it is planned again from a fresh snapshot.

pub(crate) mod batch;
pub(crate) mod by_query;
mod host;
mod json_patch;
mod transaction;

pub(crate) use transaction::{
    ItemOutcome, PatchCommand, PatchOutcome, PatchRequest, PatchStatus, TransactionItem,
    apply_transaction, compile,
};
