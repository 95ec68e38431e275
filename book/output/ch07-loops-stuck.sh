#!/usr/bin/env bash
# Regenerates chapter 7's stuck-loop experiment (book/ch07-loops.md): one
# loop busy with CPU work while clients arrive, for each --balance.
#
# The server has 2 loops (one per core here) and 200 ms of spin work per
# message. First a "hog" connection (bash's /dev/tcp) sends 25 messages
# in one write: 5 s of CPU work for whichever loop accepted it. Then 10
# clients of one message each arrive 500 ms apart, so that a loop that is
# not the hog's is idle again when the next one comes.
#
# Writes:
#   book/images/ch07-loops-stuck-BALANCE.svg  the clients' timeline, split
#                                             by the server's own log, with
#                                             a row per loop
#   ch07-loops-stuck.md                       each client's time to its
#                                             ack, per balance
# Which clients reuseport hashes to the hog's loop changes from run to
# run (the hash takes the clients' ports); the shape does not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

CLIENTS=10
ARRIVE_MS=500
WORK_MS=200
HOG_MESSAGES=25

cargo build --quiet -p ch07-loops -p client

rows=()
for balance in shared exclusive reuseport; do
    start_server ch07-loops --addr 127.0.0.1:0 --loops 2 \
        --balance "$balance" --work-kind spin --work-ms "$WORK_MS"
    exec {hog}<>"/dev/tcp/${addr%:*}/${addr##*:}"
    for n in $(seq "$HOG_MESSAGES"); do
        printf 'hog %d\003' "$n"
    done >&"$hog"
    # The hog's first message read: its loop is busy from here on.
    wait_for_log '\] message "hog 1"'
    target/debug/client "$CLIENTS" --addr "$addr" --messages 1 \
        --arrive-ms "$ARRIVE_MS" --work-ms "$WORK_MS" \
        --server-log "$scratch/server.txt" \
        --svg book/images/ch07-loops-stuck-"$balance".svg \
        --title "ch07-loops --balance $balance, one loop busy" \
        --span-ms 7000 >"$scratch/client.txt"
    exec {hog}>&-
    stop_server
    # `  0.712s  client 2   got ack for package 0 after 301 ms`
    rows+=("$(awk -v b="$balance" '
        / got ack for package 0 after / {
            ms = $NF == "ms" ? $(NF - 1) : $NF
            sub(/ms$/, "", ms)
            acks[$3] = ms
        }
        END {
            printf "| %s |", b
            for (c = 1; c <= length(acks); c++) printf " %s |", acks[c]
            print ""
        }
    ' "$scratch/client.txt")")
done

{
    header="| balance |"
    rule="| --- |"
    for c in $(seq "$CLIENTS"); do
        header="$header client $c |"
        rule="$rule ---: |"
    done
    echo "$header"
    echo "$rule"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Milliseconds from each client's message to its ack." \
        "\`ch07-loops --loops 2 --balance B --work-kind spin --work-ms" \
        "$WORK_MS\`; a hog connection sends $HOG_MESSAGES messages in one" \
        "write ($((HOG_MESSAGES * WORK_MS / 1000)) s of CPU work for its" \
        "loop), then \`client $CLIENTS --messages 1 --arrive-ms" \
        "$ARRIVE_MS\`. A client that has a loop to itself waits" \
        "$WORK_MS ms."
} >"$out/ch07-loops-stuck.md"
echo "wrote $out/ch07-loops-stuck.md and book/images/ch07-loops-stuck-*.svg"
