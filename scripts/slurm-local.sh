#!/usr/bin/env bash
# A real single-node Slurm on this machine, for fairlab's sweep tests and for trying the `slurm`
# executor locally (see ../shared/spec/slurm.md for the verified recipe this follows).
#
# Usage: scripts/slurm-local.sh start|stop|status
#   start   install Debian's slurmctld/slurmd/munge when missing (needs root and apt), write a
#           one-node slurm.conf from `slurmd -C` into $FAIRLAB_SLURM_DIR, start munged, slurmctld and
#           slurmd by hand (no systemd), wait until the node is idle, and print the environment to use
#           (SLURM_CONF=...). Idempotent: a running cluster started by this script is kept.
#   stop    stop the daemons this script started (by the PIDs it recorded).
#   status  print `sinfo` and the recorded PIDs; exit 1 when the cluster is not up.
#
# Environment: FAIRLAB_SLURM_DIR (state, logs, config; default /var/lib/fairlab-slurm: the slurm user
# must be able to reach it, which rules out root's home).
set -euo pipefail

DIR=${FAIRLAB_SLURM_DIR:-/var/lib/fairlab-slurm}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

need_root() {
  [ "$(id -u)" = 0 ] || { echo "slurm-local.sh: $1 needs root (Slurm's daemons and munge run as root/munge/slurm)" >&2; exit 2; }
}

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
     && command -v sbatch >/dev/null; then
    return
  fi
  need_root "installing Slurm"
  echo "== installing slurmctld, slurmd, slurm-client and munge with apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

running() { # PIDFILE
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

start() {
  install
  need_root "starting Slurm"
  mkdir -p "$DIR"/{state,spool,log}
  if running "$DIR/slurmctld.pid" && running "$DIR/slurmd.pid" && timeout 5 sinfo -h >/dev/null 2>&1; then
    echo "== Slurm already running (SLURM_CONF=$CONF)" >&2
    echo "export SLURM_CONF=$CONF"
    return
  fi
  # munge: the package creates the key; the daemon is started by hand.
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge/munge.key
  chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  chown -R slurm:slurm "$DIR/state" "$DIR/log"
  # NodeName must be `hostname -s`; CPUs and memory as slurmd sees them.
  local node; node=$(slurmd -C | head -1)
  local host; host=$(hostname -s)
  cat > "$CONF" <<CONF
ClusterName=fairlab-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
# A one-node test cluster: schedule every second (defaults: 60 s main, 30 s backfill), so that a
# task starts about 1 s after a slot frees instead of 2.5 s (measured with a 20-task array).
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
MinJobAge=300
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  /usr/sbin/slurmctld -f "$CONF"
  /usr/sbin/slurmd -f "$CONF"
  for _ in $(seq 100); do
    if timeout 2 sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
      echo "== Slurm up: $(sinfo -h -o '%P %D %T %c CPUs %m MB' | head -1) (SLURM_CONF=$CONF)" >&2
      echo "export SLURM_CONF=$CONF"
      return
    fi
    sleep 0.2
  done
  echo "slurm-local.sh: the node did not become idle; see $DIR/log/" >&2
  timeout 5 sinfo >&2 || true
  tail -3 "$DIR"/log/*.log >&2 || true
  exit 1
}

stop() {
  for daemon in slurmd slurmctld; do
    if running "$DIR/$daemon.pid"; then
      kill "$(cat "$DIR/$daemon.pid")"
      for _ in $(seq 50); do running "$DIR/$daemon.pid" || break; sleep 0.1; done
    fi
  done
  echo "== Slurm stopped" >&2
}

status() {
  running "$DIR/slurmctld.pid" && running "$DIR/slurmd.pid" || { echo "Slurm is not running" >&2; exit 1; }
  timeout 5 sinfo
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
