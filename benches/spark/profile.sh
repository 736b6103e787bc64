#!/usr/bin/env bash
# A flamegraph of sluice alone running one of the side-by-side workloads
# (benches/spark.rs --sluice-only), sampled only while its stream runs: not
# while the input files are generated.
#
#   bash benches/spark/profile.sh blacklist        # 120 batches
#   bash benches/spark/profile.sh wordcount 60
#
# Writes target/spark-bench/profile-<workload>.svg (open it in a browser) and
# target/spark-bench/perf-<workload>.data (`perf report -i` it for the
# numbers). Needs perf (Debian: apt-get install linux-perf) and inferno's
# flamegraph tools (installed with `cargo install inferno` when missing).
set -euo pipefail
workload=${1:?usage: profile.sh <wordcount|window|state|blacklist|tiny> [batches]}
batches=${2:-120}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/target/spark-bench
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}

command -v perf >/dev/null || {
    echo "profile.sh: needs perf (Debian: apt-get install linux-perf)" >&2
    exit 1
}
command -v inferno-flamegraph >/dev/null || cargo install inferno --locked
bench=$(cd "$root" && cargo bench -p sluice-benches --bench spark --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$bench" ] || {
    echo "profile.sh: could not build the spark bench" >&2
    exit 1
}

mkdir -p "$out"
# perf starts with sampling off (-D -1); the bench turns it on and off
# through this fifo around sluice's run (SLUICE_PERF_CTL).
ctl=$(mktemp -u "$out/perf-ctl.XXXXXX")
mkfifo "$ctl"
trap 'rm -f "$ctl"' EXIT
data=$out/perf-$workload.data
cd "$root/benches"
SLUICE_PERF_CTL=$ctl perf record -F 4000 -g -D -1 --control "fifo:$ctl" -o "$data" -- \
    "$bench" --bench --sluice-only --batches="$batches" "$workload"
perf script -i "$data" 2>/dev/null | inferno-collapse-perf |
    inferno-flamegraph --title "sluice: $workload, $batches batches" >"$out/profile-$workload.svg"
echo "flamegraph: $out/profile-$workload.svg (samples: perf report -i $data)"
