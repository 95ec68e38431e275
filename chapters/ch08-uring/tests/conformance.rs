//! The shared conformance suite (the contract,
//! book/contract.md, rule by rule) against the
//! real `ch08-uring` binary.
harness::conformance_tests!(env!("CARGO_BIN_EXE_ch08-uring"));
harness::event_loop_conformance_tests!(env!("CARGO_BIN_EXE_ch08-uring"));
