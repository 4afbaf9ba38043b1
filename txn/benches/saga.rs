//! placeholder, replaced by the saga benchmark
fn main() {}
