#!/usr/bin/env bash
# Runs the fuzz targets for SECONDS each (default 600), JOBS at a time (default 1), from
# the committed seeds (fuzz/seeds/<target>) plus the local corpus (fuzz/corpus/<target>,
# not committed), then prints one table row per target: execs, corpus, findings. A
# finding is written to fuzz/artifacts/<target>/ and makes the script exit 1.
#   fuzz/run.sh [SECONDS] [target...]        e.g. JOBS=2 fuzz/run.sh 600
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
export RUSTC_BOOTSTRAP=1 # cargo-fuzz's flags on the stable toolchain
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
logs=target/fuzz-logs
mkdir -p "$logs"
cargo fuzz build -s none -O >"$logs/build.log" 2>&1 || { cat "$logs/build.log"; exit 1; }

run_one() {
  local t=$1
  mkdir -p "corpus/$t" "seeds/$t"
  if cargo fuzz run -s none -O "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$logs/$t.log" 2>&1; then
    echo 0 >"$logs/$t.rc"
  else
    echo $? >"$logs/$t.rc"
  fi
}
export -f run_one
export secs logs
printf '%s\n' "${targets[@]}" | xargs -P "${JOBS:-1}" -I{} bash -c 'run_one {}'
# Targets with a store or a segment keep them in a per-process temp dir they never drop.
rm -rf /dev/shm/tollgate-fuzz-* "${TMPDIR:-/tmp}"/tollgate-fuzz-*

echo "| target | seconds | execs | execs/s | coverage (edges) | corpus (files/bytes) | findings |"
echo "|---|---|---|---|---|---|---|"
failed=0
for t in "${targets[@]}"; do
  log="$logs/$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || echo "?")
  corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2 || echo "?")
  found=$(grep -o 'Test unit written to [^ ]*' "$log" | cut -d' ' -f5 | tr '\n' ' ' || true)
  [ "$(cat "$logs/$t.rc")" = 0 ] || failed=1
  echo "| \`$t\` | $secs | $execs | $rate | $cov | $corp | ${found:-none} |"
done
exit "$failed"
