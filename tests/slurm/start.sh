#!/usr/bin/env bash
# Start a single-node Slurm cluster on localhost with two fake GPUs, for the Slurm backend's
# tests: munged, slurmctld, slurmd and slurmrestd (OpenAPI v0.0.38, JWT auth, 127.0.0.1:6820).
# Needs root and Debian's `slurm-wlm slurmrestd munge`. Idempotent: a running cluster is left as is.
# Prints the environment the tests read (SOPHON_SLURM_*), also written to /run/sophon-slurm.env.
set -euo pipefail
# Daemons keep the directory they start in: never one that may be deleted (a checkout).
cd /

if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed|alloc' \
  && curl -s -o /dev/null 127.0.0.1:6820 && [ -s /run/sophon-slurm.env ]; then
  cat /run/sophon-slurm.env
  exit 0
fi

node=$(hostname -s)
spool=/var/spool/sophon-slurm
mkdir -p /etc/slurm /etc/munge /var/log/slurm "$spool/ctld" "$spool/d" /run/munge /run/slurm

# Authentication: munge for the daemons, JWT for slurmrestd.
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
if [ ! -s /etc/slurm/jwt.key ]; then
  dd if=/dev/urandom of=/etc/slurm/jwt.key bs=32 count=1 status=none
fi
chmod 0600 /etc/slurm/jwt.key

# Two fake GPUs: GRES needs device files; jobs then get CUDA_VISIBLE_DEVICES.
for i in 0 1; do
  [ -e /dev/fakegpu$i ] || mknod /dev/fakegpu$i c 1 3
done

cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=sophon
SlurmctldHost=$node
SlurmUser=root
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=/etc/slurm/jwt.key
StateSaveLocation=$spool/ctld
SlurmdSpoolDir=$spool/d
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
GresTypes=gpu
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$node CPUs=$cpus RealMemory=$mem Gres=gpu:fake:2 State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/gres.conf <<CONF
NodeName=$node Name=gpu Type=fake File=/dev/fakegpu[0-1]
CONF

pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd -N "$node"
for _ in $(seq 1 50); do
  sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed|alloc' && break
  sleep 0.2
done
sinfo

# slurmrestd refuses to run as root: run it as an unprivileged user.
id slurmrest >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin slurmrest
if ! pgrep -x slurmrestd >/dev/null; then
  SLURM_JWT=daemon runuser -u slurmrest -- /usr/sbin/slurmrestd -a rest_auth/jwt -s openapi/v0.0.38 127.0.0.1:6820 \
    >/var/log/slurm/slurmrestd.log 2>&1 &
fi
for _ in $(seq 1 50); do
  curl -s -o /dev/null 127.0.0.1:6820 && break
  sleep 0.2
done

token=$(scontrol token username=root lifespan=86400 | sed 's/^SLURM_JWT=//')
cat > /run/sophon-slurm.env <<ENV
SOPHON_SLURM_URL=http://127.0.0.1:6820
SOPHON_SLURM_USER=root
SOPHON_SLURM_TOKEN=$token
ENV
cat /run/sophon-slurm.env
