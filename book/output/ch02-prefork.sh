#!/usr/bin/env bash
# Regenerates the program output shown in chapter 2 (book/ch02-prefork.md):
# the prefork server with 3 workers under 6 concurrent clients, the
# processes as `ps` and /proc see them, a worker killed with SIGKILL and
# replaced, the workers replaced on SIGHUP, and the shutdown.
#
# Writes:
#   ch02-prefork-server.txt    the server's output while it serves 6 clients
#   ch02-prefork-client.txt    the client's summary
#   ch02-prefork-ps.txt        ps and the memory of each process
#   ch02-prefork-kill.txt      kill -9 of a worker, and what the master did
#   ch02-prefork-hangup.txt    SIGHUP mid-session: new workers, the old one
#                              finishes its client's session, then exits
#   ch02-prefork-shutdown.txt  SIGTERM to the master, and the drain
# Short work (200 ms per message) keeps the run to a few seconds; the shape
# of the output is what the chapter discusses, not the exact times or pids.
#
# Also draws the chapter's picture (server.bash's timeline_pictures):
# book/images/ch02-prefork-timeline.svg, and ch02-prefork-timeline-scale.svg
# on the time axis all five models share.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

WORK_MS=200
WORKERS=3
CLIENTS=6
MESSAGES=1

cargo build --quiet -p ch02-prefork -p client -p server-models

# What slow clients do to this model: three silent connections, then
# three ordinary clients, drawn to book/images/ch02-prefork-slow-clients.svg.
slow_client_run ch02-prefork

# The master's children: its workers (the master has only one thread).
workers() {
    cat "/proc/$server_pid/task/$server_pid/children" 2>/dev/null || true
}
# Waits until the master has $1 workers, none of them $2.
wait_for_workers() {
    for _ in $(seq 200); do
        local now
        now=$(workers)
        if [ "$(wc -w <<<"$now")" -eq "$1" ] &&
            ! grep -qw "${2:-none}" <<<"$now"; then
            return 0
        fi
        sleep 0.01
    done
    echo "the master did not get to $1 workers" >&2
    exit 1
}
# The server's output from line $1 on.
log_from() { tail -n "+$1" "$scratch/server.txt"; }
log_lines() { wc -l <"$scratch/server.txt"; }
# Runs the command line $2... (`client ARGS`) in the background, its output
# into the file $1; sets client_pid.
client_in_background() {
    target/debug/"$2" "${@:3}" >"$1" 2>&1 &
    client_pid=$!
}
# Waits until the server's log from line $1 on has `message "$2"`.
wait_for_message() {
    for _ in $(seq 200); do
        log_from "$1" | grep -q "message \"$2\"" && return 0
        sleep 0.01
    done
}

start_server ch02-prefork --addr 127.0.0.1:0 --workers "$WORKERS" \
    --work-ms "$WORK_MS"
wait_for_workers "$WORKERS"

# 1. Six clients, three workers; `ps` while they are being served.
run_client "$scratch/client.txt" "$CLIENTS" --addr "$addr" \
    --messages "$MESSAGES" --work-ms "$WORK_MS" --quiet &
client_pid=$!
sleep 0.1
ps_cmd=(ps -o pid,ppid,nlwp,stat,rss,args --ppid "$server_pid" -p "$server_pid")
{
    echo "\$ ${ps_cmd[*]}"
    "${ps_cmd[@]}"
    echo
    echo "\$ # memory from /proc/PID/smaps_rollup, in kB"
    printf '%7s  %-7s %6s %6s %8s\n' PID ROLE RSS PSS PRIVATE
    for pid in "$server_pid" $(workers); do
        role=worker
        [ "$pid" = "$server_pid" ] && role=master
        awk -v pid="$pid" -v role="$role" '
            /^Rss:/ { rss = $2 }
            /^Pss:/ { pss = $2 }
            /^Private_(Clean|Dirty):/ { private += $2 }
            END { printf "%7s  %-7s %6d %6d %8d\n", pid, role, rss, pss, private }
        ' "/proc/$pid/smaps_rollup"
    done
} >"$scratch/ps.txt"
wait "$client_pid"
mv "$scratch/client.txt" "$out/ch02-prefork-client.txt"
# Let the workers log the last `closed` lines.
sleep 0.3
served=$(log_lines)

# 2. Kill one worker; the master replaces it.
victim=$(workers | awk '{ print $1 }')
kill -9 "$victim"
wait_for_workers "$WORKERS" "$victim"
sleep 0.1
killed=$(log_lines)
{
    echo "\$ kill -9 $victim"
    log_from $((served + 1)) | head -n $((killed - served))
    echo "\$ ${ps_cmd[*]}"
    "${ps_cmd[@]}"
} >"$out/ch02-prefork-kill.txt"

# 3. SIGHUP while a client is in the middle of its session: the master
# retires every worker and forks new ones; the busy worker serves the rest
# of the session, then exits; the client gets every ack.
workers_cmd=(ps -o pid,ppid,stat,args --ppid "$server_pid")
before_hup=$("${workers_cmd[@]}")
hup_cmd=(client 1 --addr "$addr" --messages 5 --work-ms "$WORK_MS")
client_in_background "$scratch/hup.txt" "${hup_cmd[@]}"
wait_for_message $((killed + 1)) "package 1"
busy=$(log_from $((killed + 1)) | grep -m1 'message "package 1"' |
    sed -n 's/.*\[pid \([0-9]*\) .*/\1/p')
kill -HUP "$server_pid"
# Three new workers and the busy old one, still in its session.
wait_for_workers $((WORKERS + 1))
during_hup=$("${workers_cmd[@]}")
wait "$client_pid"
wait_for_workers "$WORKERS" "$busy"
sleep 0.1
rotated=$(log_lines)
{
    echo "\$ ${workers_cmd[*]}"
    echo "$before_hup"
    echo "\$ ${hup_cmd[*]} &"
    echo "\$ kill -HUP $server_pid    # the master, during package 1"
    echo "\$ ${workers_cmd[*]}"
    echo "$during_hup"
    echo "\$ # the server's log:"
    log_from $((killed + 1)) | head -n $((rotated - killed))
    echo "\$ ${workers_cmd[*]}    # once the client has left"
    "${workers_cmd[@]}"
    echo "\$ # meanwhile, the client:"
    cat "$scratch/hup.txt"
} >"$out/ch02-prefork-hangup.txt"

# 4. SIGTERM while a client is in the middle of a message: the master
# passes it on, the busy worker acks that message and closes, every worker
# exits 0, then the master.
late_cmd=(client 1 --addr "$addr" --messages 5 --work-ms "$WORK_MS" --quiet)
client_in_background "$scratch/late.txt" "${late_cmd[@]}"
wait_for_message $((rotated + 1)) "package 0"
stop_server
wait "$client_pid" || true
{
    echo "\$ ${late_cmd[*]} &"
    echo "\$ kill -TERM $(sed -n 's/.*\[pid \([0-9]*\) .*/\1/p' \
        "$scratch/server.txt" | head -n 1)    # the master"
    log_from $((rotated + 1))
    echo "\$ echo \$?    # the master's exit status"
    echo "$server_status"
    echo "\$ # meanwhile, the client:"
    cat "$scratch/late.txt"
} >"$out/ch02-prefork-shutdown.txt"

{
    echo "\$ $server_line"
    head -n "$served" "$scratch/server.txt"
} >"$out/ch02-prefork-server.txt"
mv "$scratch/ps.txt" "$out/ch02-prefork-ps.txt"
echo "wrote $out/ch02-prefork-{server,client,ps,kill,hangup,shutdown}.txt"

# The picture beside the chapter's diagram.
timeline_pictures ch02-prefork
echo "wrote book/images/ch02-prefork-timeline{,-scale}.svg"
