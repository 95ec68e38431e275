//! The shared conformance suite (the contract,
//! book/contract.md, rule by rule) against the
//! real `ch05-tokio` binary.
harness::conformance_tests!(env!("CARGO_BIN_EXE_ch05-tokio"));
harness::event_loop_conformance_tests!(env!("CARGO_BIN_EXE_ch05-tokio"));
