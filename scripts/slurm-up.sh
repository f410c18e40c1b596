#!/usr/bin/env bash
# Bring up a single-node Slurm cluster (munged + slurmctld + slurmd) on this
# machine, for runtable's Slurm executor tests. Idempotent: if Slurm already
# answers and its node is usable, it prints the ready line and exits 0.
#
#   scripts/slurm-up.sh            # install if needed, start, wait, smoke-test
#   RUNTABLE_SLURM_DIR=/some/dir scripts/slurm-up.sh
#
# Needs root (installs Debian packages, writes /etc/slurm/slurm.conf, starts
# daemons). No systemd: the daemons are started directly and keep running
# after this script exits. Stop them with scripts/slurm-down.sh.
#
# Environment:
#   RUNTABLE_SLURM_DIR      scratch folder for config copy, state, spool,
#                           pid and log files (default /tmp/runtable-slurm)
#   RUNTABLE_SLURM_TIMEOUT  seconds to wait for the cluster (default 90)
#
# Output: exactly one line "slurm: ready (node X, N CPUs)" on success (exit 0);
# on failure a reason plus daemon log tails on stderr (exit 1).

set -uo pipefail

SLURM_DIR="${RUNTABLE_SLURM_DIR:-/tmp/runtable-slurm}"
TIMEOUT="${RUNTABLE_SLURM_TIMEOUT:-90}"
ETC_CONF=/etc/slurm/slurm.conf
MARKER="# written by runtable scripts/slurm-up.sh"
MUNGE_KEY=/etc/munge/munge.key
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'slurm-up: %s\n' "$*" >&2; }

tail_logs() {
    local f
    for f in "$SLURM_DIR/log/slurmctld.log" "$SLURM_DIR/log/slurmd.log" \
        "$SLURM_DIR/log/munged.start" /var/log/munge/munged.log; do
        if [ -s "$f" ]; then
            printf '==== tail %s ====\n' "$f" >&2
            tail -n 25 "$f" >&2
        fi
    done
}

die() {
    printf 'slurm-up: FAILED: %s\n' "$*" >&2
    tail_logs
    exit 1
}

# Run a Slurm/munge client command with a hard time limit so nothing hangs.
t() { timeout 15 "$@"; }

munge_ok() {
    command -v munge >/dev/null 2>&1 || return 1
    t munge -n 2>/dev/null | t unmunge >/dev/null 2>&1
}

ctld_ok() {
    command -v scontrol >/dev/null 2>&1 || return 1
    t scontrol ping 2>/dev/null | grep -q 'is UP'
}

# The local slurmd answers (slurmctld keeps showing the node idle for up to
# SlurmdTimeout after slurmd died, so sinfo alone is not enough).
slurmd_ok() {
    t scontrol show slurmd >/dev/null 2>&1
}

# State of the (single) node as sinfo reports it, e.g. "idle", "mix", "down*".
node_state() {
    t sinfo -h -N -o '%t' 2>/dev/null | head -n 1
}

node_usable() {
    case "$(node_state)" in
        idle | mix | alloc | comp) return 0 ;;
        *) return 1 ;;
    esac
}

ready_line() {
    local line name cpus
    line="$(t sinfo -h -N -o '%N %c' 2>/dev/null | head -n 1)"
    name="${line%% *}"
    cpus="${line##* }"
    printf 'slurm: ready (node %s, %s CPUs)\n' "$name" "$cpus"
}

# ---------------------------------------------------------------- fast path
if command -v sbatch >/dev/null 2>&1 && munge_ok && ctld_ok && slurmd_ok && node_usable; then
    ready_line
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    die "Slurm is not up and bringing it up needs root (running as uid $(id -u))"
fi

# ---------------------------------------------------------------- install
need_pkgs=()
command -v munged >/dev/null 2>&1 || need_pkgs+=(munge)
command -v slurmctld >/dev/null 2>&1 || need_pkgs+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || need_pkgs+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need_pkgs+=(slurm-client)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    log "installing ${need_pkgs[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-q -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold)
    timeout 300 apt-get "${apt_opts[@]}" update >"/tmp/runtable-slurm-apt.log" 2>&1 ||
        { tail -n 20 /tmp/runtable-slurm-apt.log >&2; die "apt-get update failed"; }
    timeout 600 apt-get "${apt_opts[@]}" install -y --no-install-recommends \
        "${need_pkgs[@]}" >>"/tmp/runtable-slurm-apt.log" 2>&1 ||
        { tail -n 20 /tmp/runtable-slurm-apt.log >&2; die "apt-get install ${need_pkgs[*]} failed"; }
fi

start_ts=$(date +%s)
deadline=$((start_ts + TIMEOUT))

# Stop any half-running daemons of ours (e.g. a slurmctld that lost its slurmd)
# before writing a new config and starting again.
down_out="$("$SCRIPT_DIR/slurm-down.sh" --keep-munge 2>&1)" || true
if printf '%s\n' "$down_out" | grep -q 'stopped'; then
    log "Slurm daemons were running but the cluster was not usable; restarted them"
    printf '%s\n' "$down_out" >&2
fi

# ---------------------------------------------------------------- munge
if ! munge_ok; then
    id munge >/dev/null 2>&1 || die "user 'munge' missing (munge package not installed?)"
    install -d -o munge -g munge -m 0700 /etc/munge
    if [ ! -s "$MUNGE_KEY" ]; then
        head -c 1024 /dev/urandom >"$MUNGE_KEY"
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    # A munged that is running but not answering: stop it first.
    if [ -s /run/munge/munged.pid ]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
        sleep 1
    fi
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    mkdir -p "$SLURM_DIR/log"
    as_munge() {
        if command -v runuser >/dev/null 2>&1; then
            runuser -u munge -- "$@"
        else
            su -s /bin/sh munge -c "$(printf '%q ' "$@")"
        fi
    }
    if ! as_munge /usr/sbin/munged >"$SLURM_DIR/log/munged.start" 2>&1; then
        # munged refuses a log file it does not own (or a bad log dir): use syslog.
        as_munge /usr/sbin/munged --syslog >>"$SLURM_DIR/log/munged.start" 2>&1 ||
            die "munged would not start"
    fi
    for _ in $(seq 1 20); do
        munge_ok && break
        sleep 0.25
    done
    munge_ok || die "munged started but munge -n | unmunge fails"
fi

# ---------------------------------------------------------------- config
host="$(hostname -s 2>/dev/null || hostname)"
[ -n "$host" ] || die "cannot determine the host name"

# Use what slurmd itself detects, so the node never registers with less than
# its config says (that would drain it). Fall back to nproc and /proc/meminfo.
node_hw="$(t slurmd -C 2>/dev/null | head -n 1)"
cpus="$(printf '%s\n' "$node_hw" | sed -n 's/.* CPUs=\([0-9]*\).*/\1/p')"
mem="$(printf '%s\n' "$node_hw" | sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p')"
[ -n "$cpus" ] || cpus="$(nproc)"
[ -n "$mem" ] || mem=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
topology=""
for key in Boards SocketsPerBoard CoresPerSocket ThreadsPerCore; do
    val="$(printf '%s\n' "$node_hw" | sed -n "s/.* $key=\([0-9]*\).*/\1/p")"
    [ -n "$val" ] && topology="$topology $key=$val"
done
# Default memory per CPU: what a job without --mem reserves. Without it a job
# reserves the whole node's memory and jobs run one at a time.
def_mem=$((mem / cpus))
[ "$def_mem" -gt 1024 ] && def_mem=1024

mkdir -p "$SLURM_DIR"/{state,spool,log,run,jobs}
chmod 0755 "$SLURM_DIR"
conf_new="$SLURM_DIR/slurm.conf"
cat >"$conf_new" <<EOF
$MARKER
# Single-node test cluster; regenerate by running the script again.
ClusterName=runtable
# 127.0.0.1 so a host name missing from /etc/hosts does not matter.
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
# Keep finished jobs visible to scontrol show job for an hour (no sacct here).
MinJobAge=3600
KillWait=10
SlurmdTimeout=60
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus$topology RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$def_mem
EOF

mkdir -p "$(dirname "$ETC_CONF")"
if [ -e "$ETC_CONF" ] && ! grep -qF "$MARKER" "$ETC_CONF"; then
    log "keeping the existing $ETC_CONF as $ETC_CONF.runtable-bak"
    mv -f "$ETC_CONF" "$ETC_CONF.runtable-bak"
fi
cp -f "$conf_new" "$ETC_CONF"
chmod 0644 "$ETC_CONF"

# ---------------------------------------------------------------- daemons
# Both daemonize themselves; -i: ignore unreadable state left by an old run.
slurmctld -i -f "$ETC_CONF" >"$SLURM_DIR/log/slurmctld.start" 2>&1 ||
    { cat "$SLURM_DIR/log/slurmctld.start" >&2; die "slurmctld would not start"; }
slurmd -f "$ETC_CONF" >"$SLURM_DIR/log/slurmd.start" 2>&1 ||
    { cat "$SLURM_DIR/log/slurmd.start" >&2; die "slurmd would not start"; }

left() { echo $((deadline - $(date +%s))); }

until ctld_ok; do
    [ "$(left)" -gt 0 ] || die "slurmctld not answering 'scontrol ping' after ${TIMEOUT}s"
    sleep 0.5
done

resumed=0
until slurmd_ok && node_usable; do
    [ "$(left)" -gt 0 ] ||
        die "node $host not usable after ${TIMEOUT}s (slurmd answering: $(slurmd_ok && echo yes || echo no); node state: $(node_state); $(t scontrol show node "$host" 2>/dev/null | grep -o 'Reason=.*'))"
    state="$(node_state)"
    case "$state" in
        drain* | drng | down | fail*)
            # Left drained/down by an earlier run: hand it back once.
            if [ "$resumed" -eq 0 ]; then
                t scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
                resumed=1
            fi
            ;;
    esac
    sleep 0.5
done

# ---------------------------------------------------------------- smoke test
out="$SLURM_DIR/jobs/smoke-%j.out"
jobid="$(t sbatch --parsable --job-name=runtable-smoke --time=1 --mem=10M \
    --output="$out" --chdir="$SLURM_DIR/jobs" --wrap 'echo ok' 2>"$SLURM_DIR/log/smoke.err")" ||
    { cat "$SLURM_DIR/log/smoke.err" >&2; die "sbatch of the smoke-test job failed"; }
jobid="${jobid%%;*}"
jstate=""
while :; do
    jstate="$(t scontrol show job "$jobid" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')"
    case "$jstate" in
        COMPLETED) break ;;
        FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
            t scontrol show job "$jobid" >&2
            die "smoke-test job $jobid ended $jstate"
            ;;
    esac
    if [ "$(left)" -le 0 ]; then
        t scontrol show job "$jobid" >&2
        t scancel "$jobid" >/dev/null 2>&1
        die "smoke-test job $jobid not COMPLETED after ${TIMEOUT}s (state: ${jstate:-unknown})"
    fi
    sleep 0.5
done
smoke_out="$SLURM_DIR/jobs/smoke-$jobid.out"
grep -qx ok "$smoke_out" 2>/dev/null ||
    die "smoke-test job $jobid completed but $smoke_out does not hold 'ok'"
rm -f "$smoke_out"

log "up in $(($(date +%s) - start_ts))s (config $ETC_CONF, scratch $SLURM_DIR)"
ready_line
