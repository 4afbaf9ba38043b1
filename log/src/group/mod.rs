//! Consumer groups (being written).
