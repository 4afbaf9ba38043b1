//! twopc
