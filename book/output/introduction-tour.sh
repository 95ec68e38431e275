#!/usr/bin/env bash
# Regenerates the tour's table shown on the title page (book/introduction.md):
# exactly what `cargo run --release` prints on stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --quiet --release
{
    echo "\$ cargo run --release"
    # Progress lines go to stderr; the table is stdout.
    target/release/server-models
} >book/output/introduction-tour.txt
echo "wrote book/output/introduction-tour.txt"
