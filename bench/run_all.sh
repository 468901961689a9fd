#!/usr/bin/env bash
# Re-measure every figure of bench/RESULTS.md in one go, one benchmark at a time (each needs
# the machine to itself), so that the file holds one comparable set from one machine.
#
#   cd /work/main && bench/run_all.sh            # about 45 minutes on 2 cores
#   bench/run_all.sh core templates              # only these (names below)
#
# Every benchmark runs under the benchmark lock (/tmp/netpulse-bench.lock) and writes its own
# section of bench/RESULTS.md; its output goes to $NETPULSE_BENCH_LOGS (default
# /tmp/netpulse-bench-all)/<name>.log. A benchmark that fails is reported at the end and the
# others still run. The summary (name, exit status, seconds, load before) is printed and kept
# in summary.tsv beside the logs.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
LOGS=${NETPULSE_BENCH_LOGS:-/tmp/netpulse-bench-all}
mkdir -p "$LOGS"

declare -A COMMANDS=(
  [core]="bench/core.py"
  [webhooks]="bench/webhooks.py"
  [templates]="bench/templates.py"
  [sessions]="bench/sessions.py"
  [nodes]="bench/sessions.py --parts nodes"
  [faults]="bench/faults.py"
  [linux_shell]="bench/linux_shell.py"
  [secrets]="bench/secrets_cost.py"
  [detached]="bench/detached.py"
  [cli_exec]="bench/cli_exec.py"
  [dashboard]="bench/dashboard.py --max-wait 3000"
  [timeouts]="bench/timeouts.py"
  [audit]="bench/audit.py"
)
ORDER=(core webhooks templates sessions nodes faults linux_shell secrets detached cli_exec
  dashboard timeouts audit)

if [ "$#" -gt 0 ]; then
  ORDER=("$@")
fi
for name in "${ORDER[@]}"; do
  if [ -z "${COMMANDS[$name]:-}" ]; then
    echo "unknown benchmark '$name'; known: ${!COMMANDS[*]}" >&2
    exit 2
  fi
done

printf 'name\texit\tseconds\tload_before\tcommand\n' > "$LOGS/summary.tsv"
failed=()
for name in "${ORDER[@]}"; do
  command=${COMMANDS[$name]}
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  started=$(date +%s)
  echo "[$(date -u +%H:%M:%S)] $name: $command (load $load)"
  # shellcheck disable=SC2086  # the command's words are meant to split
  flock /tmp/netpulse-bench.lock $PY $command > "$LOGS/$name.log" 2>&1
  status=$?
  seconds=$(( $(date +%s) - started ))
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$seconds" "$load" "$command" \
    >> "$LOGS/summary.tsv"
  echo "[$(date -u +%H:%M:%S)] $name: exit $status after ${seconds} s"
  if [ "$status" -ne 0 ]; then
    failed+=("$name")
  fi
done

column -t -s $'\t' "$LOGS/summary.tsv"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed: ${failed[*]} (logs in $LOGS)" >&2
  exit 1
fi
