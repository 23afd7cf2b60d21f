#!/usr/bin/env bash
# pidzero as the PID 1 of real OCI containers started by runc.
#
# The unit and black-box tests run pidzero under `unshare`; this runs the static
# binary the way Docker and Kubernetes do: in a container of its own, with the
# image layouts of examples/docker/ and the very daemons.json/config.json files the
# Dockerfiles copy, so the examples are what is tested. Cases:
#
#   1  busybox rootfs (Dockerfile.debian layout): sidecar lines are JSON records
#   2  `runc exec ID /pidzero health`: 0 while httpd serves, 1 once it hangs
#   3  `runc kill ID TERM` (docker stop): exit 0, TERM -> exit time measured
#   4  the vital httpd killed with SIGKILL: the container exits 137
#   5  orphans reparented to pidzero are reaped: no zombie is left
#   6  `/pidzero -- CMD`: the main command's status (7), a signal death as 128+N
#   7  scratch rootfs (Dockerfile.scratch layout, no shell): runs, stops on TERM
#   8  examples/kubernetes/pod.yaml's ConfigMap and Secret: the probes' GET /health
#      over TCP needs no token, a command needs the Secret's
#
# Needs root, runc, python3 and busybox-static. The binary comes from
# PIDZERO_STATIC_BIN, else it is built (static glibc, release). Prints one line per
# case and a summary; exits 1 when a case failed. Containers live under a private
# runc state root and are all removed on exit, as is the work directory (kept with
# OCI_KEEP=1, to read the containers' output). OCI_CASES="1 7" runs only those cases.
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
helpers=$here/helpers.py
examples=$repo/examples/docker

die() {
    printf 'oci: ERROR: %s\n' "$*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root: runc creates namespaces and cgroups"
command -v runc >/dev/null 2>&1 || die "runc not found (apt-get install runc)"
command -v python3 >/dev/null 2>&1 || die "python3 not found (apt-get install python3)"
busybox=${OCI_BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static, or set OCI_BUSYBOX)"
python3 "$helpers" is-static "$busybox" ||
    die "$busybox is not static; the rootfs has no libc (apt-get install busybox-static)"

if [ -n "${PIDZERO_STATIC_BIN:-}" ]; then
    bin=$PIDZERO_STATIC_BIN
else
    echo "oci: building the static binary (release, crt-static)"
    (cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --target x86_64-unknown-linux-gnu) ||
        die "the static build failed"
    bin=${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-gnu/release/pidzero
fi
[ -x "$bin" ] || die "no pidzero binary at $bin"
python3 "$helpers" is-static "$bin" ||
    die "$bin is not static: build it with RUSTFLAGS=\"-C target-feature=+crt-static\""

work=$(mktemp -d /tmp/pidzero-oci.XXXXXX)
state=$work/runc-state

# Every container of this run, wherever a case stopped.
kill_containers() {
    local id
    for id in $(runc --root "$state" list -q 2>/dev/null); do
        runc --root "$state" kill "$id" KILL >/dev/null 2>&1 || true
        runc --root "$state" delete --force "$id" >/dev/null 2>&1 || true
    done
}

cleanup() {
    local rc=$?
    kill_containers
    # The `runc run` jobs end with their containers.
    wait || true
    if [ -n "${OCI_KEEP:-}" ]; then
        echo "oci: kept $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# Inside a case: say why it failed, show what the container wrote, end the case.
fail() {
    printf '     %s\n' "$*" >&2
    local f
    for f in stdout stderr; do
        if [ -s "$work/$case_name/$f" ]; then
            printf '     --- last lines of the container'"'"'s %s:\n' "$f" >&2
            tail -n 15 "$work/$case_name/$f" | sed 's/^/     | /' >&2
        fi
    done
    exit 1
}

# A detail for the case's result line (timings).
note() { printf '%s; ' "$*" >>"$notes_file"; }

# until_ok SECONDS WHAT CMD...: run CMD until it succeeds, polling every 50 ms; the
# case fails after SECONDS.
until_ok() {
    local secs=$1 what=$2
    shift 2
    local deadline=$(($(now_ms) + secs * 1000))
    until "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$deadline" ] || fail "timed out after ${secs} s waiting for $what"
        sleep 0.05
    done
}

# ---- root filesystems -------------------------------------------------------

# The layout of examples/docker/Dockerfile.debian, with busybox and its applet links
# standing in for Debian's userland: /pidzero, /daemons.json, /config.json, /www.
make_busybox_rootfs() {
    local r=$1 applet
    mkdir -p "$r/bin" "$r/etc" "$r/run" "$r/tmp" "$r/www"
    chmod 1777 "$r/tmp"
    install -m 0755 "$busybox" "$r/bin/busybox"
    for applet in $("$busybox" --list); do
        [ -e "$r/bin/$applet" ] || ln -s busybox "$r/bin/$applet"
    done
    # The accounts of debian:bookworm-slim that the example's `user` fields name.
    cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
    cat >"$r/etc/group" <<'EOF'
root:x:0:
www-data:x:33:
nogroup:x:65534:
EOF
    install -m 0755 "$bin" "$r/pidzero"
    install -m 0644 "$examples/debian/daemons.json" "$examples/debian/config.json" "$r/"
    cp -R "$examples/www/." "$r/www/"
}

# Exactly the layout of examples/docker/Dockerfile.scratch: no shell, no libc, no
# /etc; busybox-static copied as /httpd runs only its httpd applet.
make_scratch_rootfs() {
    local r=$1
    mkdir -p "$r/www" "$r/run"
    install -m 0755 "$bin" "$r/pidzero"
    install -m 0755 "$busybox" "$r/httpd"
    install -m 0644 "$examples/scratch/daemons.json" "$examples/scratch/config.json" "$r/"
    cp -R "$examples/www/." "$r/www/"
}

# ---- containers -------------------------------------------------------------

# bundle TEMPLATE ARGS_JSON [KEY=VALUE...]: the case's bundle, a copy of TEMPLATE as
# its rootfs and `runc spec` edited for pidzero (see helpers.py spec).
bundle() {
    local b=$work/$case_name template=$1 args=$2
    shift 2
    cp -a "$template" "$b/rootfs"
    runc spec --bundle "$b"
    python3 "$helpers" spec "$b/config.json" "$args" "$@"
}

cid() { echo "pidzero-oci-$$-$case_name"; }

# Starts the case's container in the foreground mode of `runc run` (as `docker run`
# without -d), in a background job that records its exit status and the time it
# ended.
start() {
    local b=$work/$case_name
    (
        set +e
        runc --root "$state" run --bundle "$b" "$(cid)" </dev/null >"$b/stdout" 2>"$b/stderr"
        echo $? >"$b/rc.tmp"
        now_ms >"$b/ended"
        mv "$b/rc.tmp" "$b/rc"
    ) &
}

cexec() { runc --root "$state" exec "$(cid)" "$@"; }

exited() { [ -e "$work/$case_name/rc" ]; }

# stopped_within T0 WHAT: the container ended less than 4 s after T0: its daemons
# stopped on the signal, nothing waited for a stop_timeout (5 s in the examples) or
# for docker stop's 10 s before SIGKILL.
stopped_within() {
    local took=$((ended - $1))
    [ "$took" -lt 4000 ] || fail "$2 took $took ms, want under 4000 ms"
    note "$2 $took ms"
}

# wait_exit SECONDS: sets `status` and `ended` (ms).
wait_exit() {
    until_ok "$1" "the container to exit" exited
    status=$(cat "$work/$case_name/rc")
    ended=$(cat "$work/$case_name/ended")
}

health_is() {
    local rc=0
    cexec /pidzero health >/dev/null 2>&1 || rc=$?
    [ "$rc" = "$1" ]
}

has_record() { python3 "$helpers" record "$work/$case_name/stdout" "$@"; }
has_event() { python3 "$helpers" event "$work/$case_name/stdout" "$@"; }

# Host pid, ppid, state, uid and name of every process of the container.
procs() {
    local pids
    pids=$(runc --root "$state" ps --format json "$(cid)" |
        python3 -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin) or [])))')
    # shellcheck disable=SC2086 # a list of numbers
    python3 "$helpers" procs $pids
}

init_pid() {
    runc --root "$state" state "$(cid)" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'
}

daemon_pid() { cexec /pidzero status --json | python3 "$helpers" daemon-pid "$1"; }

# uid_of NAME_PATTERN: the uid of the container's process whose name matches.
uid_of() { procs | awk -v p="$1" '$5 ~ p { print $4; exit }'; }

# ---- cases ------------------------------------------------------------------


# What `docker stop` does: TERM to PID 1. pidzero must exit 0 within the
# bound, its stdout all JSON records, with a shutdown event naming SIGTERM.
stop_with_term_and_expect_0() {
    local t0
    t0=$(now_ms)
    runc --root "$state" kill "$(cid)" TERM
    wait_exit 20
    [ "$status" = 0 ] || fail "runc kill TERM: the container exited $status, want 0"
    stopped_within "$t0" "TERM -> exit"
    python3 "$helpers" all-json "$work/$case_name/stdout" ||
        fail "the container's stdout is not all JSON records"
    has_event shutdown - signal=SIGTERM || fail "no shutdown event naming SIGTERM"
}

case_sidecar_records() {
    bundle "$work/busybox-rootfs" '["/pidzero"]'
    start
    until_ok 20 "a heartbeat record on stdout" has_record heartbeat stdout "heartbeat "
    until_ok 20 "an access-log record of httpd (the health probe's GET)" \
        has_record web stderr "127.0.0.1]:"
    [ "$(uid_of '^busybox$')" = 33 ] || fail "httpd does not run as www-data (33): $(procs)"
    [ "$(uid_of '^sh$')" = 65534 ] || fail "the heartbeat does not run as nobody: $(procs)"
    # Case 2, first half, and case 3 on the same container.
    until_ok 20 "pidzero health to answer 0" health_is 0
    stop_with_term_and_expect_0
}

case_health_hung_httpd() {
    bundle "$work/busybox-rootfs" '["/pidzero"]'
    start
    until_ok 20 "pidzero health to answer 0 (httpd serving)" health_is 0
    # httpd stops answering: its process group gets SIGSTOP. The http probe then
    # times out; after `retries` failures the vital daemon is unhealthy, pidzero
    # shuts down, and httpd (stopped, so deaf to TERM) keeps the container up for
    # its stop_timeout: the window in which `health` answers 1.
    local t0 t1
    t0=$(now_ms)
    cexec /pidzero signal web STOP >/dev/null || fail "pidzero signal web STOP failed"
    until_ok 30 "pidzero health to answer 1 (httpd hung)" health_is 1
    t1=$(now_ms)
    note "STOP -> health 1 after $((t1 - t0)) ms"
    wait_exit 30
    [ "$status" = 1 ] || fail "an unhealthy vital daemon: the container exited $status, want 1"
    # The stopped httpd holds the container for its stop_timeout (5 s), then SIGKILL:
    # well within docker stop's 10 s.
    [ $((ended - t1)) -lt 9000 ] || fail "health 1 -> exit took $((ended - t1)) ms, want under 9000"
    note "health 1 -> exit $((ended - t1)) ms (web's stop_timeout 5 s, then SIGKILL)"
    until_ok 5 "a vital_exit event for web with reason unhealthy" \
        has_event vital_exit web reason=unhealthy
}

case_vital_killed() {
    bundle "$work/busybox-rootfs" '["/pidzero"]'
    start
    until_ok 20 "pidzero health to answer 0" health_is 0
    local pid t0
    pid=$(daemon_pid web) || fail "no pid for web in pidzero status --json"
    t0=$(now_ms)
    # pidzero fails fast within milliseconds, so the container may be gone
    # before `runc exec` returns, which then reports an error: the exit status
    # and the vital_exit event below are what tell.
    cexec kill -KILL "$pid" || true
    wait_exit 20
    [ "$status" = 137 ] || fail "vital httpd killed by SIGKILL: the container exited $status, want 137"
    stopped_within "$t0" "SIGKILL -> exit"
    until_ok 5 "a vital_exit event for web with status 137" has_event vital_exit web status=137
}

# The orphans: ten `sh` loops that leave the spawner's session (setsid) and wait for
# a file; the spawner exits once they all exist, so they are reparented to pidzero.
orphans_config() {
    local d=$1
    mkdir -p "$d"
    cat >"$d/daemons.json" <<'EOF'
[
  {"name": "keeper", "vital": true, "command": ["sleep", "3600"]},
  {"name": "spawner",
   "command": "for i in 1 2 3 4 5 6 7 8 9 10; do setsid sh -c 'touch /tmp/orphan.$$; until [ -e /tmp/release ]; do sleep 0.1; done' & done; until [ $(ls /tmp/orphan.* | wc -l) -ge 10 ]; do sleep 0.05; done"}
]
EOF
    echo '{"api": {"listen": "127.0.0.1:9090"}, "shutdown_timeout": 5}' >"$d/config.json"
}

orphans_alive() {
    local init
    init=$(init_pid)
    [ "$(procs | awk -v i="$init" '$2 == i && $5 == "sh"' | wc -l)" -eq 10 ]
}

only_daemons_left() {
    local list
    list=$(procs)
    ! echo "$list" | awk '$3 == "Z"' | grep -q . && [ "$(echo "$list" | wc -l)" -eq 2 ]
}

case_orphans_reaped() {
    bundle "$work/busybox-rootfs" '["/pidzero", "--config-dir", "/oci-orphans"]'
    orphans_config "$work/$case_name/rootfs/oci-orphans"
    start
    until_ok 20 "the spawner's exited event" has_event exited spawner
    until_ok 10 "10 orphans reparented to pidzero" orphans_alive
    local t0 reaped
    t0=$(now_ms)
    cexec touch /tmp/release || fail "cannot release the orphans"
    until_ok 10 "no zombie and only pidzero and keeper left" only_daemons_left
    note "orphans gone $(($(now_ms) - t0)) ms after release"
    reaped=$(cexec wget -qO- http://127.0.0.1:9090/metrics | python3 "$helpers" metric pidzero_reaped_total) ||
        fail "no pidzero_reaped_total in /metrics"
    [ "$reaped" -ge 10 ] || fail "pidzero_reaped_total is $reaped, want at least 10"
    note "pidzero_reaped_total $reaped"
    runc --root "$state" kill "$(cid)" TERM
    wait_exit 20
    [ "$status" = 0 ] || fail "runc kill TERM: the container exited $status, want 0"
}

# /oci-main is an empty config dir: a main command and no daemons.json, the drop-in
# for tini (`ENTRYPOINT ["/pidzero", "--"]`).
main_command() {
    mkdir -p "$work/$case_name"
    bundle "$work/busybox-rootfs" "$1"
    mkdir -p "$work/$case_name/rootfs/oci-main"
}

case_main_command() {
    local base=$case_name t0
    case_name=$base-exit7
    main_command '["/pidzero", "--config-dir", "/oci-main", "--", "sh", "-c", "echo main says hi; exit 7"]'
    start
    wait_exit 20
    [ "$status" = 7 ] || fail "-- sh -c 'exit 7': the container exited $status, want 7"
    [ "$(cat "$work/$case_name/stdout")" = "main says hi" ] ||
        fail "stdout is not just the main command's output"
    [ ! -s "$work/$case_name/stderr" ] || fail "pidzero wrote to stderr"

    case_name=$base-usr1
    main_command '["/pidzero", "--config-dir", "/oci-main", "--", "sh", "-c", "kill -USR1 $$"]'
    start
    wait_exit 20
    [ "$status" = 138 ] || fail "main command killed by SIGUSR1: the container exited $status, want 138"

    case_name=$base-term
    main_command '["/pidzero", "--config-dir", "/oci-main", "--", "sleep", "3600"]'
    start
    until_ok 20 "pidzero health to answer 0" health_is 0
    t0=$(now_ms)
    runc --root "$state" kill "$(cid)" TERM
    wait_exit 20
    [ "$status" = 143 ] || fail "runc kill TERM forwarded to the main command: exited $status, want 143"
    stopped_within "$t0" "exit 7 -> 7, SIGUSR1 -> 138, runc kill TERM -> 143 in"
}

case_scratch() {
    bundle "$work/scratch-rootfs" '["/pidzero"]'
    start
    until_ok 20 "pidzero health to answer 0" health_is 0
    until_ok 20 "an access-log record of httpd" has_record web stderr "127.0.0.1]:"
    [ "$(uid_of '^httpd$')" = 65534 ] || fail "httpd does not run as 65534: $(procs)"
    stop_with_term_and_expect_0
}

# The pod of examples/kubernetes/pod.yaml: its ConfigMap's files at /etc/pidzero and
# the Secret's token in PIDZERO_API_TOKEN, as the kubelet would set them up.
case_kubernetes() {
    local pod=$repo/examples/kubernetes/pod.yaml token dir out
    token=$(python3 "$helpers" block "$pod" token) || fail "no token in the Secret"
    bundle "$work/busybox-rootfs" '["/pidzero", "--config-dir", "/etc/pidzero"]' \
        "PIDZERO_API_TOKEN=$token"
    dir=$work/$case_name/rootfs/etc/pidzero
    mkdir -p "$dir"
    python3 "$helpers" block "$pod" daemons.json >"$dir/daemons.json"
    python3 "$helpers" block "$pod" config.json >"$dir/config.json"
    start
    # What the readiness and liveness probes ask: no Authorization header.
    until_ok 20 "GET /health on the TCP listener to answer 200" \
        cexec wget -q -O /dev/null http://127.0.0.1:9090/health
    out=$(cexec wget -q -O - http://127.0.0.1:9090/health) || fail "GET /health failed"
    [ "$out" = '{"status":"healthy"}' ] || fail "GET /health answered $out"
    out=$(cexec wget -S -O /dev/null --post-data '' http://127.0.0.1:9090/shutdown 2>&1) &&
        fail "POST /shutdown without the token was accepted"
    [[ "$out" == *" 401 "* ]] || fail "POST /shutdown without the token: want 401, got: $out"
    cexec wget -q -O /dev/null --post-data '' --header "Authorization: Bearer $token" \
        http://127.0.0.1:9090/shutdown || fail "POST /shutdown with the Secret's token failed"
    wait_exit 20
    [ "$status" = 0 ] || fail "after POST /shutdown the container exited $status, want 0"
    has_event shutdown - reason=request || fail "no shutdown event for the request"
    ! grep -qF "$token" "$work/$case_name/stdout" "$work/$case_name/stderr" ||
        fail "the token appears in the container's output"
}

# ---- driver -----------------------------------------------------------------

passed=0
failed=0

# run_case N NAME FUNCTION DESCRIPTION: the case runs in a subshell (with errexit in
# force: it is not a condition) so that one failure does not stop the others; its
# containers are removed whatever happened.
run_case() {
    local n=$1 description=$4 rc t0
    if [ -n "${OCI_CASES:-}" ] && [[ " $OCI_CASES " != *" $n "* ]]; then
        return 0
    fi
    case_name=$2
    notes_file=$work/$2.notes
    mkdir -p "$work/$case_name"
    t0=$(now_ms)
    set +e
    (
        set -e
        "$3"
    )
    rc=$?
    set -e
    kill_containers
    local notes=""
    [ -e "$notes_file" ] && notes=" ($(sed 's/; $//' "$notes_file"))"
    local took
    took=$(awk -v ms="$(($(now_ms) - t0))" 'BEGIN { printf "%.1f s", ms / 1000 }')
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        printf 'ok   %s %s [%s]%s\n' "$n" "$description" "$took" "$notes"
    else
        failed=$((failed + 1))
        printf 'FAIL %s %s [%s]%s\n' "$n" "$description" "$took" "$notes"
    fi
}

make_busybox_rootfs "$work/busybox-rootfs"
make_scratch_rootfs "$work/scratch-rootfs"
echo "oci: pidzero $("$bin" --version | awk '{print $2}') ($bin), $(runc --version | head -n 1)"

run_case 1 sidecar case_sidecar_records \
    "busybox rootfs: sidecar lines are JSON records; health 0; runc kill TERM -> 0 (cases 1, 2, 3)"
run_case 2 hung case_health_hung_httpd \
    "health answers 1 once httpd hangs; the container then exits 1 (case 2)"
run_case 4 killed case_vital_killed \
    "vital httpd killed with SIGKILL -> the container exits 137 (case 4)"
run_case 5 orphans case_orphans_reaped \
    "orphans reparented to pidzero are reaped, no zombie left (case 5)"
run_case 6 main case_main_command \
    "-- CMD passes the status through: 7, 128+N (case 6)"
run_case 7 scratch case_scratch \
    "scratch rootfs (no shell): runs, healthy, runc kill TERM -> 0 (case 7)"
run_case 8 kubernetes case_kubernetes \
    "pod.yaml's ConfigMap and Secret: GET /health needs no token, POST /shutdown needs it (case 8)"

echo "oci: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
