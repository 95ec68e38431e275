#!/usr/bin/env bash
# Regenerates the measurements of prefork's accepting shown in chapter 2
# (book/ch02-prefork.md, "Who accepts"): which worker served how many
# clients, and how many `accept` calls the thundering herd wastes.
#
# Writes:
#   ch02-prefork-workers.md  30 clients against 3 workers: connections
#                            per worker, from the server's own log
#   ch02-prefork-herd.md     accept calls that failed with EAGAIN per
#                            accepted connection, from strace, for 3 and
#                            20 workers, with clients one after another
#                            and with 20 clients at once
# The counts vary a little from run to run (they depend on which worker
# the scheduler runs first); the shape is what the chapter discusses.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

CLIENTS=30
WORKERS=3
HERD_CLIENTS=20

cargo build --quiet -p ch02-prefork -p client

# 1. Who served whom: 30 clients at once, one message of 100 ms each,
# against 3 workers. The log names the process that accepted each
# connection; the master's `started worker PID` lines number them.
start_server ch02-prefork --addr 127.0.0.1:0 --workers "$WORKERS" \
    --work-ms 100
wait_for_children "$server_pid" "$WORKERS"
target/debug/client "$CLIENTS" --addr "$addr" --messages 1 --work-ms 100 \
    --quiet >/dev/null
stop_server
awk -v cmd="$server_line" -v clients="$CLIENTS" '
    / started worker / { order[++workers] = $NF }
    / accepted / { pid = $3; served[pid]++; total++ }
    END {
        printf "`%s`, then `client %d --messages 1 --work-ms 100`:\n\n", \
            cmd, clients
        print "| worker | pid | connections served |"
        print "| ---: | ---: | ---: |"
        for (i = 1; i <= workers; i++)
            printf "| %d | %s | %d |\n", i, order[i], served[order[i]]
        printf "| all | | %d |\n", total
    }
' "$scratch/server.txt" >"$out/ch02-prefork-workers.md"

# 2. The herd. Runs the server with N workers under strace, sends it
# clients - one after another, or all at once - and counts the workers'
# accept calls: those that returned a connection and those that failed
# with EAGAIN because another worker took it first. strace writes its
# record as the calls happen; it ends when the server does, so the server
# (strace's child), not strace, gets the SIGTERM.
herd_row() {
    local workers=$1 load=$2 strace_pid master arriving
    strace -f -e trace=accept4,accept -o "$scratch/trace.txt" \
        target/debug/ch02-prefork --addr 127.0.0.1:0 --workers "$workers" \
        --work-ms 0 --quiet >"$scratch/server.txt" 2>&1 &
    strace_pid=$!
    wait_for_children "$strace_pid" 1
    master=$(children "$strace_pid" | awk '{ print $1 }')
    # The EXIT trap kills the master if the script fails from here on;
    # its workers die with it, and strace ends with them.
    server_pid=$master
    wait_for_log '^listening on '
    addr=$(sed -n 's/^listening on //p' "$scratch/server.txt")
    wait_for_children "$master" "$workers"
    # Let every worker reach its first poll: the herd is counted against
    # an idle server.
    sleep 0.3
    case "$load" in
    sequential)
        arriving="one at a time"
        for _ in $(seq "$HERD_CLIENTS"); do
            target/debug/client 1 --addr "$addr" --messages 1 --quiet \
                >/dev/null
            # Every worker back in poll before the next client.
            sleep 0.05
        done
        ;;
    burst)
        arriving="at once"
        target/debug/client "$HERD_CLIENTS" --addr "$addr" --messages 1 \
            --quiet >/dev/null
        ;;
    esac
    kill -TERM "$master"
    wait "$strace_pid"
    server_pid=
    # A call interrupted by another process's line is split into
    # `accept4(... <unfinished ...>` and `<... accept4 resumed> ...) = R`;
    # only the line with the result counts.
    awk -v workers="$workers" -v arriving="$arriving" \
        -v clients="$HERD_CLIENTS" '
        /accept4?\(|<\.\.\. accept4? resumed>/ && !/unfinished/ {
            if (/= -1 EAGAIN/) eagain++
            else if (/\) = [0-9]+$/) accepted++
        }
        END {
            printf "| %d | %d %s | %d | %d | %.1f |\n", workers, clients, \
                arriving, accepted, eagain, accepted ? eagain / accepted : 0
        }
    ' "$scratch/trace.txt"
}

{
    echo "| workers | clients | accepted | failed with EAGAIN |" \
        "EAGAIN per connection |"
    echo "| ---: | --- | ---: | ---: | ---: |"
    for workers in 3 20; do
        for load in sequential burst; do
            herd_row "$workers" "$load"
        done
    done
    echo
    echo "\`strace -f -e trace=accept4,accept\` on \`ch02-prefork" \
        "--workers N --work-ms 0 --quiet\`; each client sends one" \
        "message. One at a time: each client connects 50 ms after the" \
        "last one closed, with every worker back in poll. At once:" \
        "$HERD_CLIENTS clients connecting together."
} >"$out/ch02-prefork-herd.md"
echo "wrote $out/ch02-prefork-workers.md, ch02-prefork-herd.md"
