#!/usr/bin/env bash
# Regenerates the future sizes shown in chapter 5 (book/ch05-tokio.md): how
# big the state machines are that the compiler wrote from the server's
# `async fn`s.
#
# Writes ch05-tokio-future-size.txt from the unit test that measures them
# (chapters/ch05-tokio/src/future_size.rs), which prints one line per
# future and fails if a connection's future reaches 1.5 KiB.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=book/output
scratch=$(mktemp)
trap 'rm -f "$scratch"' EXIT

{
    echo "\$ cargo test -p ch05-tokio --lib future_size -- --nocapture"
    cargo test --quiet -p ch05-tokio --lib future_size -- --nocapture |
        grep -E '^ *[a-z_]+: +[0-9]+ bytes$'
} >"$scratch"
chmod 644 "$scratch"
mv "$scratch" "$out/ch05-tokio-future-size.txt"
echo "wrote $out/ch05-tokio-future-size.txt"
