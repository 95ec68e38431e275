#!/usr/bin/env bash
# Regenerates the listen-backlog output in chapter 1 (book/ch01-single.md):
# `ss -ltn` on the single server's listening socket while clients connect
# and wait for the one thread to get round to them.
#
# Writes ch01-single-backlog.txt. The server does 1 s of work per message;
# one client is served, then two groups of three connect while it is. For a
# listening socket `ss` shows in Recv-Q the connections waiting in the
# backlog (handshake done, not yet accepted) and in Send-Q the backlog's
# size. The clients are left to finish before the server stops, so the run
# takes about 8 seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

cargo build --quiet -p ch01-single -p client

start_server ch01-single --addr 127.0.0.1:0 --work-ms 1000
port=${addr##*:}

# listening_ss: the server's listening socket as `ss -ltn` shows it.
listening_ss() {
    echo "\$ ss -ltn 'sport = :$port'"
    ss -ltn "sport = :$port"
}

# wait_for_backlog N: waits (up to 5 s) until Recv-Q is N.
wait_for_backlog() {
    for _ in $(seq 500); do
        [ "$(ss -ltnH "sport = :$port" | awk '{ print $2 }')" = "$1" ] &&
            return 0
        sleep 0.01
    done
    echo "the backlog never reached $1" >&2
    return 1
}

# clients N: N clients of one message each, in the background.
clients() {
    target/debug/client "$1" --addr "$addr" --messages 1 --work-ms 1000 \
        --quiet >/dev/null &
}

{
    echo "\$ # the server, before any client"
    listening_ss
    echo
    echo "\$ # one client, accepted and being served"
    clients 1
    # Accepted: the thread took it out of the backlog, which is empty.
    wait_for_log ' accepted ' ||
        { echo "the server accepted nobody" >&2; exit 1; }
    wait_for_backlog 0
    listening_ss
    echo
    echo "\$ # three more clients connect while it is served"
    clients 3
    wait_for_backlog 3
    listening_ss
    echo
    echo "\$ # and three more"
    clients 3
    wait_for_backlog 6
    listening_ss
} >"$scratch/backlog.txt"

wait_clients() {
    local pid
    for pid in $(jobs -p); do
        [ "$pid" = "$server_pid" ] || wait "$pid"
    done
}
wait_clients
stop_server
mv "$scratch/backlog.txt" "$out/ch01-single-backlog.txt"
echo "wrote $out/ch01-single-backlog.txt"
