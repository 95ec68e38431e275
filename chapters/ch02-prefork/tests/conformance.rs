//! Chapter 2's server keeps every clause of the contract (book/contract.md):
//! the shared suite, with two worker processes.
client::conformance_tests!(
    env!("CARGO_BIN_EXE_ch02-prefork"),
    &["--workers", "2"]
);
