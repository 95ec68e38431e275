#!/usr/bin/env bash
# Regenerates chapter 7's throughput table (book/ch07-loops.md): messages
# per second and server CPU per message with zero work, for chapter 4's
# one loop and for chapter 7 with one and two loops, driven by the
# client on the same machine.
#
# Writes:
#   ch07-loops-throughput.md  one row per server: messages/s, the cores
#                             the server used, its CPU time per message
# Release builds: this measures speed. The load driver shares the
# machine's cores with the server, which is what the chapter discusses;
# the numbers move with whatever else the machine runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

CLIENTS=100
MESSAGES=2000

cargo build --quiet --release -p ch04-epoll -p ch07-loops -p client

# cpu_ticks: the server's user + system time so far, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$server_pid/stat"
}

# row PROGRAM LOOPS ARGS...: one measured run, as a table row.
row() {
    local program=$1 loops=$2 before seconds ticks hz
    shift 2
    start_server target/release/"$program" --addr 127.0.0.1:0 \
        --work-ms 0 --quiet "$@"
    before=$(cpu_ticks)
    target/release/client "$CLIENTS" --addr "$addr" \
        --messages "$MESSAGES" --work-ms 0 --quiet >"$scratch/client.txt"
    ticks=$(($(cpu_ticks) - before))
    stop_server
    hz=$(getconf CLK_TCK)
    # `200000 messages acked (100 clients x 2000) in 1.234 s`
    seconds=$(awk '/ messages acked / { print $(NF - 1) }' \
        "$scratch/client.txt")
    awk -v name="$program${*:+ $*}" -v loops="$loops" -v s="$seconds" \
        -v ticks="$ticks" -v hz="$hz" -v n=$((CLIENTS * MESSAGES)) '
        BEGIN {
            cpu = ticks / hz
            printf "| `%s` | %d | %.0f | %.2f | %.1f |\n", \
                name, loops, n / s, cpu / s, cpu / n * 1e6
        }'
}

{
    echo "| server | loops | messages/s | server cores busy |" \
        "server CPU per message (µs) |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    row ch04-epoll 1
    row ch07-loops 1 --loops 1 --balance reuseport
    for balance in shared exclusive reuseport; do
        row ch07-loops 2 --loops 2 --balance "$balance"
    done
    echo
    echo "Zero work: \`client $CLIENTS --messages $MESSAGES --work-ms 0\`" \
        "(a thread per client, each sending a message and waiting for" \
        "its ack, $((CLIENTS * MESSAGES)) messages in all) against each" \
        "server started with \`--work-ms 0 --quiet\`, on a machine with" \
        "$(nproc) cores shared by the server and the client. Server CPU" \
        "is user + system time from \`/proc/PID/stat\`."
} >"$out/ch07-loops-throughput.md"
echo "wrote $out/ch07-loops-throughput.md"
