//! The shared conformance suite (the contract, book/contract.md, rule by
//! rule) against the real `ch04-epoll` binary with its poll(2) backend:
//! the same loop, asking for readiness the older way.
harness::conformance_tests!(
    env!("CARGO_BIN_EXE_ch04-epoll"),
    &["--poller", "poll"]
);
harness::event_loop_conformance_tests!(
    env!("CARGO_BIN_EXE_ch04-epoll"),
    &["--poller", "poll"]
);
