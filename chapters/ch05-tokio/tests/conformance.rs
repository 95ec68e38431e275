//! The shared conformance suite (the contract, book/contract.md, clause
//! by clause) against the real `ch05-tokio` binary.
client::conformance_tests!(env!("CARGO_BIN_EXE_ch05-tokio"));
