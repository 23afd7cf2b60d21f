# The workloads bench/compare/run.sh and profile.sh share, written into $W
# (which the sourcing script sets): sleeps.sh and pidzero config dirs.

# A shell that starts N `sleep 100000` and, on SIGTERM, stops them and waits:
# the stand-in for "N daemons" under tini, dumb-init and catatonit, which run one child.
cat >"$W/sleeps.sh" <<'EOS'
trap 'kill $pids 2>/dev/null; wait; exit 143' TERM
pids=
i=0
while [ "$i" -lt "$1" ]; do sleep 100000 & pids="$pids $!"; i=$((i + 1)); done
wait
EOS

pz_dir() { # NAME N: a pidzero config dir with N sleep daemons (control socket on)
    local d=$W/$1 i
    mkdir -p "$d"
    printf '{"api": {"socket": "%s/pidzero.sock"}}\n' "$d" >"$d/config.json"
    {
        echo "["
        for ((i = 1; i <= $2; i++)); do
            printf '  {"name": "s%d", "command": ["sleep", "100000"]}%s\n' "$i" "$([ "$i" -lt "$2" ] && echo ,)"
        done
        echo "]"
    } >"$d/daemons.json"
}
