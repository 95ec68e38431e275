//! The shared conformance suite (the contract,
//! book/contract.md, rule by rule) against the
//! real `ch08-uring` binary. Where the kernel refuses io_uring, each check
//! says so and is skipped.
const SERVER: &str = env!("CARGO_BIN_EXE_ch08-uring");

/// Why this server cannot run here, if the kernel refuses io_uring.
fn unavailable() -> Option<String> {
    ch08_uring::ring::Ring::new().err().map(|e| e.to_string())
}

harness::conformance_tests!(SERVER, &[], unavailable: unavailable());
harness::event_loop_conformance_tests!(
    SERVER,
    &[],
    unavailable: unavailable()
);
