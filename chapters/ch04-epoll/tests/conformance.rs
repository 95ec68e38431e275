//! The shared conformance suite (the contract,
//! book/contract.md, rule by rule) against the
//! real `ch04-epoll` binary.
harness::conformance_tests!(env!("CARGO_BIN_EXE_ch04-epoll"));
harness::event_loop_conformance_tests!(env!("CARGO_BIN_EXE_ch04-epoll"));
