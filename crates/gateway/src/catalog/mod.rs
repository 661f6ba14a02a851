//! The model catalog: which provider serves which model under which id, at what price, with what
//! limits and capabilities. (Data files and loading: see the catalog issue; prices live here.)

mod price;

pub use price::{Cost, Price};
