//! The book's contract page names every conformance check, so a reader
//! can go from a rule to the test that holds every server to it, and a
//! new check cannot be added without the page saying what it checks.
use std::fs;
use std::path::Path;

/// Every name in `harness::CHECKS` (every group) appears on `book/contract.md` as inline
/// code (`` `basic_session` ``).
#[test]
fn contract_page_names_every_check() {
    let page =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../book/contract.md");
    let text = fs::read_to_string(&page)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", page.display()));
    let missing: Vec<&str> = harness::all_checks()
        .filter(|name| !text.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "book/contract.md does not name these conformance checks: {}",
        missing.join(", ")
    );
}
