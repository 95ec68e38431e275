//! Chapter 1's server keeps every clause of the contract (book/contract.md):
//! the shared suite.
client::conformance_tests!(env!("CARGO_BIN_EXE_ch01-single"));
