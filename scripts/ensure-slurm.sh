#!/usr/bin/env bash
# A real single-node Slurm for the Slurm executor's tests: installs Debian's slurm-wlm, munge,
# slurmdbd and MariaDB when missing (sacct needs the accounting database), writes a config for
# this one node with a 1-second scheduler, starts munged, mariadb, slurmdbd, slurmctld and
# slurmd when they are not running, and waits until the node is idle. Idempotent; quiet.
# The node has two fake GPUs (gres "gpu" on device files that are /dev/null: jobs get
# CUDA_VISIBLE_DEVICES, nothing more), so --gres=gpu:N is scheduled for real.
# GREENAI_SLURM_CONF_DIR (default /etc/slurm) is where the config goes.
set -euo pipefail
CONF_DIR="${GREENAI_SLURM_CONF_DIR:-/etc/slurm}"
STATE=/var/lib/greenai-slurm
FAKE_GPUS=2
NODE="$(hostname -s)"
say() { echo "ensure-slurm: $*"; }

install_packages() {
  local missing=()
  command -v sbatch >/dev/null || missing+=(slurm-wlm slurm-client)
  command -v slurmdbd >/dev/null || missing+=(slurmdbd)
  command -v munged >/dev/null || missing+=(munge)
  command -v mariadbd >/dev/null || missing+=(mariadb-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
    echo "ensure-slurm: missing ${missing[*]} and cannot install them (needs root and apt-get)" >&2
    exit 1
  fi
  say "installing ${missing[*]} (Debian packages)"
  local log
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  rm -f "$log"
}

write_config() {
  mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$STATE/fake-gpus" /var/log/slurm
  for i in $(seq 0 $(( FAKE_GPUS - 1 ))); do  # character devices 1,3: what /dev/null is
    [ -c "$STATE/fake-gpus/gpu$i" ] || mknod "$STATE/fake-gpus/gpu$i" c 1 3
  done
  cat >"$CONF_DIR/slurm.conf.new" <<CONF
# Written by greenai's scripts/ensure-slurm.sh: one node, scheduling every second.
ClusterName=greenai
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
KillWait=5
MessageTimeout=10
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=$NODE CPUs=$(nproc) Gres=gpu:$FAKE_GPUS State=UNKNOWN
PartitionName=greenai Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
  cat >"$CONF_DIR/gres.conf.new" <<CONF
AutoDetect=off
NodeName=$NODE Name=gpu File=$STATE/fake-gpus/gpu[0-$(( FAKE_GPUS - 1 ))]
CONF
  cat >"$CONF_DIR/slurmdbd.conf.new" <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=greenai_slurm_acct
PidFile=/run/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
CONF
  for name in slurm.conf gres.conf slurmdbd.conf; do
    if cmp -s "$CONF_DIR/$name.new" "$CONF_DIR/$name"; then
      rm "$CONF_DIR/$name.new"
    else
      mv "$CONF_DIR/$name.new" "$CONF_DIR/$name"
      CHANGED=1
    fi
  done
  chmod 600 "$CONF_DIR/slurmdbd.conf"
}

running() { pgrep -x "$1" >/dev/null; }

wait_until() {  # wait_until SECONDS WHAT COMMAND...
  local left=$(( $1 * 10 )) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    left=$(( left - 1 ))
    if [ "$left" -le 0 ]; then
      echo "ensure-slurm: timed out waiting for $what" >&2
      tail -n 20 /var/log/slurm/*.log >&2 || true
      exit 1
    fi
    sleep 0.1
  done
}

node_idle() { sinfo -h -n "$NODE" -o %t | grep -qx idle; }

start_services() {
  if [ "${CHANGED:-0}" = 1 ]; then  # a new config: restart what reads it
    for daemon in slurmd slurmctld slurmdbd; do
      if running "$daemon"; then pkill -x "$daemon"; fi
    done
    wait_until 20 "old Slurm daemons to stop" bash -c '! pgrep -x "slurmd|slurmctld|slurmdbd"'
  fi
  if ! running munged; then
    [ -s /etc/munge/munge.key ] || mungekey --create --force >/dev/null 2>&1 || create-munge-key -f >/dev/null
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- munged
  fi
  if ! running mariadbd; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    (mariadbd-safe >/dev/null 2>&1 &)
    wait_until 60 "MariaDB" mariadb -e 'select 1'
  fi
  running slurmdbd || slurmdbd
  wait_until 60 "slurmdbd" sacctmgr -n list cluster
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx greenai; then
    sacctmgr -i add cluster greenai >/dev/null
  fi
  running slurmctld || slurmctld
  running slurmd || slurmd
  wait_until 60 "node $NODE to be idle" node_idle
}

started=$SECONDS
if [ "$(id -u)" != "0" ] && command -v sinfo >/dev/null && node_idle; then
  say "using the Slurm already running on $NODE (not root: its config is left alone)"
  exit 0
fi
install_packages
write_config
start_services
say "Slurm ready on $NODE in $(( SECONDS - started )) s"
