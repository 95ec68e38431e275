//! The shared conformance suite (the contract, book/contract.md, rule by
//! rule) against the real `ch07-loops` binary: four loops sharing the
//! port with `--balance exclusive`.
harness::conformance_tests!(
    env!("CARGO_BIN_EXE_ch07-loops"),
    &["--balance", "exclusive", "--loops", "4"]
);
harness::event_loop_conformance_tests!(
    env!("CARGO_BIN_EXE_ch07-loops"),
    &["--balance", "exclusive", "--loops", "4"]
);
