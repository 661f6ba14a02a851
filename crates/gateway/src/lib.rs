//! Ekai Gateway: the server, providers, routing and everything else that does IO.
//! See ARCHITECTURE.md for the map.

pub mod accounting;
pub mod api;
pub mod catalog;
pub mod cli;
pub mod clients;
pub mod config;
pub mod error;
pub mod ledger;
pub mod providers;
pub mod proxy;
pub mod router;
pub mod sapphire;
pub mod server;
pub mod tokenize;
pub mod x402;
