#!/usr/bin/env bash
# Draws the pictures of the hostile-clients chapter (book/hostile-clients.md):
# ordinary clients of the prefork server (3 workers) while 3 slowloris
# connections trickle one byte every 500 ms and never finish a message.
# The idle timeout (10 s) never fires: a byte always arrived recently. Two
# runs, the same but for the message deadline:
#
#   book/images/hostile-slowloris-open.svg      --message-timeout-ms 0: no
#                                               deadline; the ordinary
#                                               clients wait until the
#                                               trickling connections give
#                                               up (after TRICKLE_S)
#   book/images/hostile-slowloris-deadline.svg  --message-timeout-ms 1000:
#                                               the trickling connections
#                                               are cut off after 1 s
#
# The table of every model under every attack is the benchmark's
# (`server-models bench --scenarios hostile`), not this script's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

WORKERS=3
# How long the trickling connections keep at it, when nothing stops them.
TRICKLE_S=4

cargo build --quiet -p server-models -p client -p ch02-prefork

# trickle: in the background, opens WORKERS connections to the server
# (bash's /dev/tcp: a connect, no bytes) and sends one byte (no ETX) on
# each every 500 ms, TRICKLE_S seconds long, then exits, which closes
# them. Only that background shell holds them, so nothing else keeps them
# open. A connection the server has closed fails its write; the others go
# on (SIGPIPE is ignored, so one closed connection does not end the loop).
trickle() {
    (
        trap '' PIPE
        local fd attackers=()
        for _ in $(seq "$WORKERS"); do
            exec {fd}<>"/dev/tcp/${addr%:*}/${addr##*:}"
            attackers+=("$fd")
        done
        for _ in $(seq $((TRICKLE_S * 2))); do
            for fd in "${attackers[@]}"; do
                printf x >&"$fd" 2>/dev/null || true
            done
            sleep 0.5
        done
    ) &
    trickler=$!
}

# slowloris_run DEADLINE_MS SVG: the run, with --message-timeout-ms
# DEADLINE_MS, drawn to SVG.
slowloris_run() {
    local deadline=$1 svg=$2
    start_server ch02-prefork --addr 127.0.0.1:0 --work-ms 200 \
        --workers "$WORKERS" --idle-timeout-ms 10000 \
        --message-timeout-ms "$deadline"
    trickle
    # The trickling connections are connected, and their first bytes
    # out, before the ordinary clients come.
    sleep 0.3
    target/debug/client 3 --addr "$addr" --messages 3 --work-ms 200 \
        --quiet --server-log "$scratch/server.txt" --svg "$svg" \
        --span-ms 5000 \
        --title "ch02-prefork --workers $WORKERS --message-timeout-ms \
$deadline, behind $WORKERS trickling connections" >/dev/null
    wait "$trickler"
    stop_server
}

slowloris_run 0 book/images/hostile-slowloris-open.svg
slowloris_run 1000 book/images/hostile-slowloris-deadline.svg
