//! Ekai wire formats: the canonical model, each API dialect's wire types and conversions, and the SSE
//! machinery. This crate does no IO: no sockets, no files, no clocks, no async runtime.
//!
//! Each dialect module converts to and from `canonical` and never imports another dialect.

pub mod canonical;
pub mod dialect;
mod fields;
pub mod sse;
