#!/usr/bin/env bash
# A single-node Slurm on this machine, from Debian's packages, for attnrun's `slurm` tests.
#
#   scripts/slurm-local.sh up     # install (apt-get) what is missing, configure, start; idempotent
#   scripts/slurm-local.sh down   # stop every daemon `up` started
#   scripts/slurm-local.sh status # one line: up or down, and why
#
# Daemons (no systemd needed): munged (authentication), mariadbd + slurmdbd (accounting, so that
# sacct — which submitit reads job states from — answers), slurmctld (the controller) and slurmd
# (the one compute node: this host, every core, partition `debug`). Configuration and state live in
# /etc/slurm, /var/lib/slurm-local and /var/log/slurm-local. Needs root. One line per step.
set -euo pipefail

PACKAGES=(munge mariadb-server slurmdbd slurmctld slurmd slurm-client)
STATE=/var/lib/slurm-local
LOG=/var/log/slurm-local
ETC=/etc/slurm
CLUSTER=attnrun
HOST=$(hostname -s)

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: error: $*" >&2; exit 1; }
pidfile() { # the pid file of daemon $1 (every daemon here writes one)
  case "$1" in
    munged) echo /run/munge/munged.pid ;;
    mariadbd) echo /run/mysqld/mysqld.pid ;;
    *) echo "$STATE/$1.pid" ;;
  esac
}
running() { local f p; f=$(pidfile "$1"); p=$(cat "$f" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
daemon() { # start a daemon in its own session, off this script's terminal and pipes
  setsid "$@" </dev/null >>"$LOG/daemons.out" 2>&1
}
wait_for() { # wait_for SECONDS what command...
  local t=$1 what=$2; shift 2
  for _ in $(seq "$((t * 2))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "$what did not come up within ${t}s (logs: $LOG)"
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "packages: installed (already)"; return; fi
  [ "$(id -u)" = 0 ] || die "packages missing (${missing[*]}) and not root: apt-get install ${missing[*]}"
  command -v apt-get >/dev/null || die "packages missing (${missing[*]}) and no apt-get on this machine"
  say "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # no service starts from the packages' scripts: this script starts what it needs
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$STATE/apt.log" 2>&1 || { rm -f /usr/sbin/policy-rc.d; die "apt-get could not install ${missing[*]} (see $STATE/apt.log)"; }
  rm -f /usr/sbin/policy-rc.d
  for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || die "package $p is still missing"
  done
  say "packages: installed"
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  fi
  if running munged; then say "munge: running (already)"; return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  daemon runuser -u munge -- /usr/sbin/munged --force --pid-file="$(pidfile munged)"
  wait_for 10 munge sh -c 'munge -n | unmunge'
  say "munge: started"
}

start_mariadb() {
  if running mariadbd; then say "mariadb: running (already)"; else
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >"$LOG/mariadb-install.log" 2>&1
    (cd / && setsid mariadbd --user=mysql --bind-address=127.0.0.1 \
      --pid-file="$(pidfile mariadbd)" </dev/null >"$LOG/mariadb.log" 2>&1 &) </dev/null >/dev/null 2>&1
    wait_for 30 mariadb mariadb -e "select 1"
    say "mariadb: started"
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

write_config() {
  local cpus mem
  cpus=$(nproc)
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10))
  mkdir -p "$ETC" "$STATE/ctld" "$STATE/d" "$LOG"
  cat >"$ETC/slurm.conf" <<EOF
# written by attnrun's scripts/slurm-local.sh: one node, this host
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
# bind the daemons to the loopback address, not every interface
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
MpiDefault=none
KillWait=5
InactiveLimit=0
MinJobAge=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
CommunicationParameters=NoInAddrAny
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$ETC/slurmdbd.conf"
  say "config: $ETC/slurm.conf (node $HOST, $cpus CPUs, ${mem} MB), $ETC/slurmdbd.conf"
}

start_slurmdbd() {
  if running slurmdbd; then say "slurmdbd: running (already)"; return; fi
  daemon slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
  say "slurmdbd: started"
}

start_slurm() {
  sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true
  if running slurmctld; then say "slurmctld: running (already)"; else
    daemon slurmctld
    wait_for 30 slurmctld scontrol ping
    say "slurmctld: started"
  fi
  if running slurmd; then say "slurmd: running (already)"; else
    daemon slurmd
    say "slurmd: started"
  fi
  wait_for 30 "node $HOST" sh -c "sinfo -h -n $HOST -o %T | grep -Eq 'idle|mixed|allocated'"
  say "up: partition debug, node $HOST ($(sinfo -h -n "$HOST" -o %T)); sacct answers: $(sacct -n -X -S now >/dev/null 2>&1 && echo yes || echo no)"
}

stop() { # stop NAME: by the pid in its pid file, never by name
  if running "$1"; then
    kill "$(cat "$(pidfile "$1")")" || true
    for _ in $(seq 40); do running "$1" || break; sleep 0.5; done
    say "$1: stopped"
  else
    say "$1: not running"
  fi
}

case "${1:-}" in
  up)
    [ "$(id -u)" = 0 ] || die "needs root (it installs packages and starts daemons)"
    mkdir -p "$STATE" "$LOG"
    install_packages
    start_munge
    start_mariadb
    write_config
    start_slurmdbd
    start_slurm
    ;;
  down)
    for d in slurmd slurmctld slurmdbd mariadbd munged; do stop "$d"; done
    ;;
  status)
    if command -v sinfo >/dev/null && scontrol ping >/dev/null 2>&1; then
      say "up ($(sinfo -h -o '%P %D %T' | head -1))"
    else
      say "down"; exit 1
    fi
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
