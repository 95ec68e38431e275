//! Turns every ```` ```rust ```` snippet in the book into a test.
//!
//! skeptic reads `book/*.md` and writes one test per plain Rust code block
//! into `$OUT_DIR/skeptic-tests.rs`, which `tests/skeptic.rs` includes, so
//! `cargo test` compiles and runs the prose's own examples. Listings
//! included from the chapter crates are fenced `rust,ignore`: skeptic does
//! not expand `{{#include}}`, and those crates build and test themselves.

fn main() {
    // skeptic asks to rerun when one of the files it read changes; a
    // chapter added to `book/` must trigger a rerun too.
    println!("cargo:rerun-if-changed=book");
    let chapters = skeptic::markdown_files_of_directory("book/");
    skeptic::generate_doc_tests(&chapters);
}
