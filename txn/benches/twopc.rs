//! placeholder, replaced by the twopc benchmark
fn main() {}
