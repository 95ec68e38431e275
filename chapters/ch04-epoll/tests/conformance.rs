//! The shared conformance suite (the contract, book/contract.md, clause
//! by clause) against the real `ch04-epoll` binary.
client::conformance_tests!(env!("CARGO_BIN_EXE_ch04-epoll"));
