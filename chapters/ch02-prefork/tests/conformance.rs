//! Chapter 2's server keeps every rule of the contract
//! (book/contract.md): the shared suite,
//! with two worker processes.
harness::conformance_tests!(
    env!("CARGO_BIN_EXE_ch02-prefork"),
    &["--workers", "2"]
);
