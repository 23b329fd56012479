//! Destinations, one folder each with the same shape.

pub mod raven;
pub mod sql;
