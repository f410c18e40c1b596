#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by scripts/slurm-up.sh:
# cancel its jobs, stop slurmd and slurmctld, then munged.
#
#   scripts/slurm-down.sh               # stop everything
#   scripts/slurm-down.sh --keep-munge  # leave munged running
#   scripts/slurm-down.sh --purge       # also delete the scratch folder
#                                       # (job state, logs): next up starts fresh
#
# Pid files are read from /etc/slurm/slurm.conf when slurm-up wrote it, else
# from RUNTABLE_SLURM_DIR (default /tmp/runtable-slurm). Safe to run when
# nothing is running. Exit 0 once the daemons are gone, 1 if one survives.

set -uo pipefail

SLURM_DIR="${RUNTABLE_SLURM_DIR:-/tmp/runtable-slurm}"
ETC_CONF=/etc/slurm/slurm.conf
keep_munge=0
purge=0
for arg in "$@"; do
    case "$arg" in
        --keep-munge) keep_munge=1 ;;
        --purge) purge=1 ;;
        -h | --help)
            sed -n '2,12p' "$0"
            exit 0
            ;;
        *)
            echo "slurm-down: unknown argument $arg" >&2
            exit 2
            ;;
    esac
done

log() { printf 'slurm-down: %s\n' "$*" >&2; }

conf_value() { # conf_value KEY DEFAULT
    local v=""
    [ -r "$ETC_CONF" ] && v="$(sed -n "s/^$1=//p" "$ETC_CONF" | head -n 1)"
    printf '%s\n' "${v:-$2}"
}

# Alive and not a zombie (an exited daemon can linger as a zombie until
# PID 1 reaps it; kill -0 would still succeed on it).
alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)"
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

pid_from() { # pid_from PIDFILE NAME: pid if the file names a live NAME process
    local pid
    [ -s "$1" ] || return 1
    pid="$(tr -dc 0-9 <"$1")"
    [ -n "$pid" ] && alive "$pid" || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    printf '%s\n' "$pid"
}

stop_pid() { # stop_pid PID NAME
    local pid="$1" name="$2"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 40); do
        alive "$pid" || { log "stopped $name (pid $pid)"; return 0; }
        sleep 0.25
    done
    log "$name (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
    ! alive "$pid"
}

ctld_pidfile="$(conf_value SlurmctldPidFile "$SLURM_DIR/run/slurmctld.pid")"
slurmd_pidfile="$(conf_value SlurmdPidFile "$SLURM_DIR/run/slurmd.pid")"
state_dir="$(conf_value StateSaveLocation "$SLURM_DIR/state")"
rc=0

ctld_pid="$(pid_from "$ctld_pidfile" slurmctld)" || ctld_pid=""
slurmd_pid="$(pid_from "$slurmd_pidfile" slurmd)" || slurmd_pid=""

# Cancel the jobs so no job steps outlive the cluster.
if [ -n "$ctld_pid" ] && command -v squeue >/dev/null 2>&1; then
    jobs="$(timeout 10 squeue -h -o %i 2>/dev/null | tr '\n' ' ')"
    if [ -n "${jobs// /}" ]; then
        # shellcheck disable=SC2086 # one argument per job id
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 1 20); do
            [ -z "$(timeout 10 squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

if [ -n "$slurmd_pid" ]; then stop_pid "$slurmd_pid" slurmd || rc=1; fi
if [ -n "$ctld_pid" ]; then stop_pid "$ctld_pid" slurmctld || rc=1; fi

if [ "$keep_munge" -eq 0 ]; then
    munged_pid="$(pid_from /run/munge/munged.pid munged)" || munged_pid=""
    if [ -n "$munged_pid" ]; then stop_pid "$munged_pid" munged || rc=1; fi
fi

if [ "$purge" -eq 1 ]; then
    # Only the folders slurm-up made; refuse anything that looks like a system path.
    for d in "$SLURM_DIR" "$(dirname "$state_dir")"; do
        case "$d" in
            / | /tmp | /etc* | /usr* | /var | /var/lib | /run | "") continue ;;
        esac
        if [ -d "$d" ] && [ -e "$d/slurm.conf" ]; then
            rm -rf "$d" && log "removed $d"
        fi
    done
fi

if [ "$rc" -eq 0 ]; then log "down"; else log "a daemon did not stop"; fi
exit "$rc"
