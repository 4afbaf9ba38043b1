//! Nothing here: this package only carries the dsys benchmarks (see
//! `Cargo.toml`), whose sources live in each crate's `benches/` folder.
