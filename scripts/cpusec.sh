#!/usr/bin/env bash
# cpusec.sh CMD...: runs CMD and prints to stderr its wall time and the CPU-seconds the whole
# machine spent meanwhile (user, nice, system, irq and softirq from /proc/stat; not idle, not
# I/O wait, not steal), with CMD's exit status, which it returns. docs/PERFORMANCE.md ("The
# test suite's cost") measured with it, e.g.:
#
#   CI=true bash scripts/cpusec.sh bash .ci/run
#   bash scripts/cpusec.sh bash e2e/browser/run.sh
#
# It counts every process on the machine, so run it on a quiet one.
set -uo pipefail
busy() {
  local _ user nice system idle iowait irq softirq _rest
  read -r _ user nice system idle iowait irq softirq _rest </proc/stat
  echo $((user + nice + system + irq + softirq))
}
before=$(busy)
start=$(date +%s.%N)
"$@"
rc=$?
end=$(date +%s.%N)
after=$(busy)
awk -v rc="$rc" -v s="$start" -v e="$end" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
  'BEGIN { printf "cpusec: rc=%d wall=%.1f s cpu=%.0f CPU-s\n", rc, e - s, t / hz }' >&2
exit "$rc"
