//! Every rule of the contract (book/contract.md), checked against the
//! thread per connection by the same suite as every other chapter's
//! server (`harness::conformance`), and what it does when the system
//! refuses it a thread.
harness::conformance_tests!(env!("CARGO_BIN_EXE_thread-per-connection"));
harness::thread_per_connection_conformance_tests!(env!(
    "CARGO_BIN_EXE_thread-per-connection"
));
