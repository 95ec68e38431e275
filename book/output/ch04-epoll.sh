#!/usr/bin/env bash
# Regenerates the program output shown in chapter 4 (book/ch04-epoll.md):
#
#   ch04-epoll-server.txt   the event loop's log under 3 clients (one thread)
#   ch04-epoll-client.txt   those 3 clients' timeline: they overlap
#   ch04-epoll-200.txt      200 clients x 500 ms of sleep work
#   ch04-epoll-spin.txt     the same 3 clients with CPU-bound (spin) work
#   ch04-epoll-strace.txt   system calls per message (only if strace works)
#
# Short work keeps the runs to seconds; the shape of the output is what the
# chapter discusses, not the exact times.
#
# Also draws the chapter's picture (server.bash's timeline_pictures):
# book/images/ch04-epoll-timeline.svg, and ch04-epoll-timeline-scale.svg
# on the time axis all five models share.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

cargo build --quiet -p ch04-epoll -p client -p server-models
cargo build --quiet --release -p ch04-epoll --bins

# What slow clients do to this model: three silent connections, then
# three ordinary clients, drawn to book/images/ch04-epoll-slow-clients.svg.
slow_client_run ch04-epoll

# 1. Three clients, three messages each, 200 ms of sleep work per message:
# chapter 1's run.
three_clients_run ch04-epoll

# 2. Two hundred clients, 500 ms of sleep work each: the timers overlap.
start_server ch04-epoll --addr 127.0.0.1:0 --work-ms 500 --quiet
run_client "$out/ch04-epoll-200.txt" 200 --addr "$addr" --messages 1 \
    --work-ms 500 --quiet
stop_server

# 3. CPU-bound work: the loop itself computes, and everyone waits.
start_server ch04-epoll --addr 127.0.0.1:0 --work-ms 200 \
    --work-kind spin --quiet
run_client "$scratch/spin.txt" 3 --addr "$addr" --messages 3 --work-ms 200 \
    --quiet
stop_server
{
    echo "\$ ch04-epoll --addr 127.0.0.1:0 --work-ms 200 --work-kind spin"
    cat "$scratch/spin.txt"
} >"$out/ch04-epoll-spin.txt"

# 4. System calls per message, counted by strace on the release build.
# Needs strace and permission to trace; without them the old file stays.
if command -v strace >/dev/null; then
    start_server target/release/ch04-epoll --addr 127.0.0.1:0 \
        --work-ms 0 --quiet
    strace -c -o "$scratch/strace.txt" -p "$server_pid" 2>/dev/null &
    tracer=$!
    sleep 0.5 # strace attaches asynchronously
    run_client "$scratch/client.txt" 50 --addr "$addr" --messages 200 --quiet
    stop_server
    wait "$tracer" || true
    if grep -q total "$scratch/strace.txt"; then
        {
            echo "\$ strace -c -p SERVER_PID   # while this client runs:"
            head -n 2 "$scratch/client.txt"
            echo
            cat "$scratch/strace.txt"
        } >"$out/ch04-epoll-strace.txt"
    else
        echo "strace could not trace; kept $out/ch04-epoll-strace.txt" >&2
    fi
else
    echo "no strace; kept $out/ch04-epoll-strace.txt" >&2
fi

echo "wrote $out/ch04-epoll-{server,client,200,spin,strace}.txt"

# The picture beside the chapter's diagram.
timeline_pictures ch04-epoll
echo "wrote book/images/ch04-epoll-timeline{,-scale}.svg"
