//! Chapter 1's server keeps every rule of the contract
//! (book/contract.md): the shared suite.
harness::conformance_tests!(env!("CARGO_BIN_EXE_ch01-single"));
