#!/usr/bin/env bash
# Runs the decoder benchmark (chapters/protocol/benches/decoder.rs) and
# writes its table to book/measurements/decoder-bench.txt, which the
# "Measuring the models" chapter includes. About a minute, mostly the
# optimized build.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=book/measurements/decoder-bench.txt
# divan prints the table on stdout; cargo's progress goes to stderr.
cargo bench --quiet -p protocol --bench decoder > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
