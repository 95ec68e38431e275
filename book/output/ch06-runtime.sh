#!/usr/bin/env bash
# Regenerates the program output shown in chapter 6 (book/ch06-runtime.md):
#
#   ch06-runtime-server.txt       the runtime's log under 3 clients
#   ch06-runtime-client.txt       those 3 clients' timeline: they overlap
#   ch06-runtime-future-size.txt  the size of the session's state machines,
#                                 from the unit test that measures them
#                                 (chapters/ch06-runtime/src/future_size.rs)
#
# Also draws the chapter's pictures (server.bash's timeline_pictures and
# slow_client_run): book/images/ch06-runtime-timeline.svg,
# ch06-runtime-timeline-scale.svg on the time axis every model shares, and
# ch06-runtime-slow-clients.svg.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

cargo build --quiet -p ch06-runtime -p client -p server-models

# What slow clients do to this model: three silent connections, then
# three ordinary clients, drawn to book/images/ch06-runtime-slow-clients.svg.
slow_client_run ch06-runtime

# Three clients at once, then SIGTERM: the switch wakes every task, each
# acks the message in progress and closes, and the server exits 0.
three_clients_run ch06-runtime
echo "wrote $out/ch06-runtime-server.txt, ch06-runtime-client.txt"

# The futures the compiler wrote, measured on the release build (the
# size a served connection has).
{
    echo "\$ cargo test --release -p ch06-runtime --lib future_size" \
        "-- --nocapture"
    cargo test --quiet --release -p ch06-runtime --lib future_size \
        -- --nocapture | grep -E '^ *[a-z_]+: +[0-9]+ bytes$'
} >"$scratch/future-size.txt"
mv "$scratch/future-size.txt" "$out/ch06-runtime-future-size.txt"
echo "wrote $out/ch06-runtime-future-size.txt"

# The picture beside the chapter's diagram.
timeline_pictures ch06-runtime
echo "wrote book/images/ch06-runtime-timeline{,-scale}.svg"
