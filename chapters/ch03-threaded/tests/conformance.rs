//! Every rule of the contract (book/contract.md), checked against the
//! thread pool by the same suite as every other chapter's server
//! (`harness::conformance`).
harness::conformance_tests!(
    env!("CARGO_BIN_EXE_ch03-threaded"),
    &["--workers", "3"]
);
harness::bounded_queue_conformance_tests!(
    env!("CARGO_BIN_EXE_ch03-threaded"),
    &["--workers", "3"]
);
