//! The shared conformance suite (the contract,
//! book/contract.md, rule by rule) against the
//! real `ch06-runtime` binary.
harness::conformance_tests!(env!("CARGO_BIN_EXE_ch06-runtime"));
harness::event_loop_conformance_tests!(env!("CARGO_BIN_EXE_ch06-runtime"));
