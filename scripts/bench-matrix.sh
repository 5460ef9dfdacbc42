#!/usr/bin/env bash
# The client benchmark matrix of issue 8: events of 100 B, 1 KiB and 100 KiB × 1 and 4 writers
# (with as many readers) × streams of 1 and 16 segments, against a release `pravaha standalone`
# started here in a temporary directory on ephemeral ports. Prints a Markdown table; the JSON
# summaries are kept in $OUT.
#
#   scripts/bench-matrix.sh                 # 10 s per case
#   SECONDS_PER_CASE=30 scripts/bench-matrix.sh
#   PRAVAHA=/path/to/pravaha BUILD=0 scripts/bench-matrix.sh
#
# Variables: SECONDS_PER_CASE (10), SIZES ("100 1024 102400"), WRITERS ("1 4"),
# SEGMENTS ("1 16"), PRAVAHA (the binary; default: the workspace's release build), BUILD (1:
# build it first), OUT (where the JSON goes; default: a new temporary directory), BENCH_ARGS
# (more `pravaha bench` options, e.g. "--rate 10000" or "--transactions 100").
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${SECONDS_PER_CASE:-10}"
sizes="${SIZES:-100 1024 102400}"
writer_counts="${WRITERS:-1 4}"
segment_counts="${SEGMENTS:-1 16}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
pravaha="${PRAVAHA:-$target_dir/release/pravaha}"
out="${OUT:-$(mktemp -d -t pravaha-bench-matrix.XXXXXX)}"
mkdir -p "$out"

if [[ "${BUILD:-1}" == 1 && -z "${PRAVAHA:-}" ]]; then
    (cd "$root" && cargo build --release --locked -p pravaha)
fi

data="$(mktemp -d -t pravaha-bench-data.XXXXXX)"
log="$out/standalone.log"
: >"$log"
"$pravaha" standalone --data-dir "$data/data" --segment-store 127.0.0.1:0 \
    --grpc 127.0.0.1:0 --rest 127.0.0.1:0 2>"$log" >/dev/null &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

controller=""
for _ in $(seq 300); do
    controller="$(sed -n 's/^controller gRPC on //p' "$log")"
    [[ -n "$controller" ]] && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$controller" ]] || { echo "the standalone did not start; see $log" >&2; exit 1; }
echo "standalone: controller on $controller, data in $data, output in $out" >&2

for size in $sizes; do
    for writers in $writer_counts; do
        for segments in $segment_counts; do
            case="size${size}-w${writers}-s${segments}"
            echo "running $case" >&2
            # shellcheck disable=SC2086 # BENCH_ARGS is a list of options
            "$pravaha" bench --controller "tcp://$controller" --json \
                --event-size "$size" --writers "$writers" --readers "$writers" \
                --segments "$segments" --seconds "$seconds" --baseline-dir "$data" \
                --scope bench --stream "$case" ${BENCH_ARGS:-} >"$out/$case.jsonl"
            # The case's data goes with its stream, so the whole matrix needs the disk space
            # of one case, not of twelve.
            "$pravaha" stream delete --controller "tcp://$controller" "bench/$case" >/dev/null
        done
    done
done

python3 - "$out" <<'PY'
import json, pathlib, sys

rows = []
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.jsonl")):
    summary = json.loads(path.read_text().splitlines()[-1])
    rows.append(summary)
rows.sort(key=lambda s: (s["event_size"], s["writers"], s["segments"]))

def ms(us):
    return f"{us / 1000:.2f}"

print("| event | writers/readers | segments | write ev/s | write MB/s | ack p50/p99/p99.9 ms "
      "| read MB/s | e2e p50/p99/p99.9 ms | engine MB/s | write ÷ engine |")
print("|---|---|---|---|---|---|---|---|---|---|")
for s in rows:
    write, ack = s["write"], s["write_latency"]
    read, e2e = s.get("read", {}), s.get("end_to_end_latency")
    base = s.get("baseline", {})
    e2e_text = f"{ms(e2e['p50_us'])}/{ms(e2e['p99_us'])}/{ms(e2e['p999_us'])}" if e2e else "-"
    print(f"| {s['event_size']} B | {s['writers']}/{s['readers']} | {s['segments']} "
          f"| {write['events_per_second']:.0f} | {write['mb_per_second']:.2f} "
          f"| {ms(ack['p50_us'])}/{ms(ack['p99_us'])}/{ms(ack['p999_us'])} "
          f"| {read.get('mb_per_second', 0):.2f} | {e2e_text} "
          f"| {base.get('mb_per_second', 0):.2f} | {base.get('write_ratio', 0):.3f} |")
PY
