#!/usr/bin/env bash
# Regenerates chapter 7's measurements of who accepts (book/ch07-loops.md):
# the thundering herd, and how the connections spread over the loops, for
# each --balance.
#
# Writes:
#   ch07-loops-herd.md    4 loops, 40 clients arriving one at a time:
#                         per connection, accept calls (the counting
#                         rule: every wakeup ends with one accept that
#                         finds nothing), wakeups that found nothing, and
#                         the loops' thread wakeups (voluntary context
#                         switches, from /proc), which count the wakeups
#                         the loops never saw return from epoll_wait
#   ch07-loops-spread.md  connections accepted per loop, 40 clients
#                         arriving at once and one at a time
# The counts vary a little from run to run (they depend on which thread
# the scheduler runs first); the shape is what the chapter discusses.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

LOOPS=4
CLIENTS=40
ARRIVE_MS=50

cargo build --quiet -p ch07-loops -p client

# loop_switches: the voluntary context switches of the server's loop
# threads so far, summed: each one is a time a loop went to sleep, so
# each wakeup of a sleeping loop adds one.
loop_switches() {
    local task total=0 n
    for task in /proc/"$server_pid"/task/*; do
        case "$(cat "$task/comm")" in
        loop-*)
            n=$(awk '/^voluntary_ctxt_switches/ { print $2 }' \
                "$task/status")
            total=$((total + n))
            ;;
        esac
    done
    echo "$total"
}

# run_clients BALANCE ARRIVAL: a server with $LOOPS loops sharing the port
# the BALANCE way, $CLIENTS clients of one message each, arriving `burst`
# (at once) or `trickle` ($ARRIVE_MS ms apart, every loop back asleep in
# between), then SIGTERM: the loops' counts lines are in
# $scratch/server.txt, and `switches` holds the loops' thread wakeups
# during the clients' run.
run_clients() {
    local balance=$1 arrival=$2 before arrive=()
    [ "$arrival" = trickle ] && arrive=(--arrive-ms "$ARRIVE_MS")
    start_server ch07-loops --addr 127.0.0.1:0 --loops "$LOOPS" \
        --balance "$balance" --work-ms 0 --quiet
    # Every loop started and asleep in epoll_wait.
    sleep 0.3
    before=$(loop_switches)
    target/debug/client "$CLIENTS" --addr "$addr" --messages 1 \
        "${arrive[@]}" --quiet >/dev/null
    switches=$(($(loop_switches) - before))
    stop_server
}

# counts_of FILE: the loops' counts lines, as `loop wakeups empty calls
# accepted`, one per loop, in loop order.
counts_of() {
    awk '/\] listener: / {
        loop = $4; sub(/\]$/, "", loop)
        gsub(/[(),]/, "")
        print loop, $6, $8, $11, $14
    }' "$1" | sort
}

herd_rows=()
spread_rows=()
for balance in shared exclusive reuseport; do
    for arrival in trickle burst; do
        run_clients "$balance" "$arrival"
        counts_of "$scratch/server.txt" >"$scratch/counts.txt"
        spread_rows+=("$(awk -v b="$balance" -v a="$arrival" '
            { row = row " " $5 " |"; total += $5 }
            END { printf "| %s | %s |%s %d |\n", b, a, row, total }
        ' "$scratch/counts.txt")")
        [ "$arrival" = trickle ] || continue
        herd_rows+=("$(awk -v b="$balance" -v s="$switches" '
            { wakeups += $2; empty += $3; calls += $4; accepted += $5 }
            END {
                printf "| %s | %d | %d | %d | %d | %.1f | %.1f |\n", \
                    b, accepted, wakeups, empty, calls, \
                    calls / accepted, s / accepted
            }
        ' "$scratch/counts.txt")")
    done
done

{
    echo "| balance | connections | listener wakeups |" \
        "found nothing | accept calls | accept calls per connection |" \
        "loop wakeups per connection |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${herd_rows[@]}"
    echo
    echo "\`ch07-loops --loops $LOOPS --balance B --work-ms 0 --quiet\`," \
        "then \`client $CLIENTS --messages 1 --arrive-ms $ARRIVE_MS\`:" \
        "each client connects, sends one message, reads its ack, says" \
        "goodbye, and the next arrives $ARRIVE_MS ms after the one" \
        "before. Listener wakeups, accept calls and connections from the" \
        "loops' counts; loop wakeups are the loop threads' voluntary" \
        "context switches during the run (from" \
        "\`/proc/PID/task/TID/status\`), which include each connection's" \
        "own wakeups for its message and its goodbye."
} >"$out/ch07-loops-herd.md"

{
    header="| balance | clients arrive |"
    rule="| --- | --- |"
    for n in $(seq 0 $((LOOPS - 1))); do
        header="$header loop-$n |"
        rule="$rule ---: |"
    done
    echo "$header all |"
    echo "$rule ---: |"
    printf '%s\n' "${spread_rows[@]}"
    echo
    echo "Connections accepted by each loop (its counts line at exit)," \
        "\`ch07-loops --loops $LOOPS --balance B --work-ms 0 --quiet\`" \
        "and \`client $CLIENTS --messages 1\`: \`burst\` all at once," \
        "\`trickle\` with \`--arrive-ms $ARRIVE_MS\`."
} >"$out/ch07-loops-spread.md"
echo "wrote $out/ch07-loops-herd.md, ch07-loops-spread.md"
