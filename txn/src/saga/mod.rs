//! saga
