#!/usr/bin/env bash
# Run the whole benchmark suite, in order: codec, poll (idle / status / chat / scale curve /
# uvloop), login storm, memory, restart with 1,000 users (hand-over against reconnect), cluster
# (cross-node latency, CPU per poll of a cluster node, two nodes' throughput). One
# figure or ratio per line; a summary at the end.
#
#   bash bench/run.sh            # everything (about 15-20 minutes on 2 cores)
#   bash bench/run.sh --quick    # smaller and shorter: a smoke test of the suite, not figures
#   bash bench/run.sh codec poll # only these benchmarks (codec, poll, login, memory, handover, cluster)
#
# Exit code: 0 when every target ratio was met, 1 when one was missed, 2 on a setup error.
# It prepares what it needs first: scripts/setup.sh --test (venv, codec, chio, MySQL, Redis),
# wrk (apt-get, if missing), uvloop and py-spy (pip --target bench/.deps; the server's
# virtualenv is not touched). Set PEP_BENCH_SERVER_CORE / PEP_BENCH_LOAD_CORE to move the pinning
# (defaults 0 and 1), PEP_BENCH_REPO=/path to benchmark another checkout of the server.
set -uo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
cd "$ROOT"
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '[bench] %s\n' "$*"; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 2; }

QUICK=0
WHICH=()
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        codec|poll|login|memory|handover|cluster) WHICH+=("$arg") ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) die "unknown argument $arg (expected --quick, codec, poll, login, memory, handover, cluster)" ;;
    esac
done
[ ${#WHICH[@]} -gt 0 ] || WHICH=(codec poll login memory handover cluster)

# ---------------------------------------------------------------- prerequisites
if [ -z "${PEP_BENCH_SKIP_SETUP:-}" ]; then
    mkdir -p "$BENCH/results"
    bash scripts/setup.sh --test >"$BENCH/results/setup.log" 2>&1 \
        || { tail -30 "$BENCH/results/setup.log"; die "scripts/setup.sh --test failed"; }
fi
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || die "no $PY (scripts/setup.sh should have made it)"

if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk (apt-get)"
    { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; }; } \
        || die "could not install wrk with apt-get"
fi
command -v taskset >/dev/null 2>&1 || say "taskset missing (util-linux): processes will not be pinned"

if ! PYTHONPATH="$BENCH/.deps" "$PY" -c "import uvloop" >/dev/null 2>&1 || [ ! -x "$BENCH/.deps/bin/py-spy" ]; then
    say "installing uvloop and py-spy into bench/.deps (pip --target)"
    "$PY" -m pip install -q --upgrade --target "$BENCH/.deps" -r "$BENCH/requirements.txt" \
        || say "could not install bench/requirements.txt: the uvloop comparison and profiles will be skipped"
fi

nproc_=$(nproc)
[ "$nproc_" -ge 2 ] || say "only $nproc_ core: the server and the load generator will share it"
say "machine: nproc $nproc_, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $("$PY" -V), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- benchmarks
declare -A ARGS
if [ "$QUICK" = 1 ]; then
    ARGS[codec]="--repeat 3 --seconds 0.05"
    ARGS[poll]="--duration 3 --short 2 --scale 100,1000 --no-uvloop"
    ARGS[login]="--accounts 100 --cost 6 --cold-polled 20"
    ARGS[memory]="--users 500,1000"
    ARGS[handover]="--users 100"
    ARGS[cluster]="--users 40 --samples 30 --seconds 2"
else
    ARGS[codec]=""; ARGS[poll]=""; ARGS[login]=""; ARGS[memory]=""; ARGS[handover]=""; ARGS[cluster]=""
fi

status=0
ran=()
for name in "${WHICH[@]}"; do
    say "---- $name: python bench/$name.py ${ARGS[$name]}"
    # shellcheck disable=SC2086
    "$PY" "$BENCH/$name.py" ${ARGS[$name]}
    rc=$?
    ran+=("$name")
    if [ $rc -eq 1 ]; then
        status=1
    elif [ $rc -ne 0 ]; then
        say "$name failed to run (exit $rc)"
        status=2
    fi
done

say "---- summary"
"$PY" "$BENCH/report.py" --summary "${ran[@]}"
case $status in
    0) say "all targets met" ;;
    1) say "some targets were missed (see FAIL lines above)" ;;
    *) say "a benchmark could not run" ;;
esac
exit $status
