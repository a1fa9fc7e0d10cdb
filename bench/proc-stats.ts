import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

/** What the benches read of a process from Linux's /proc: its peak memory and its CPU time. */

/** VmHWM (peak resident set) of a process, MiB. */
export function peakRssMiB(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) / 1024;
}

/** Resets VmHWM to the current RSS (Linux: 5 > /proc/pid/clear_refs). */
export async function resetPeakRss(pid: number): Promise<void> {
  await fs.writeFile(`/proc/${pid}/clear_refs`, '5');
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = procStat(pid);
  return (stat.utime + stat.stime) / 100;
}

/** A process's /proc/<pid>/stat: parent, and CPU ticks of its own and of the children it has reaped. */
function procStat(pid: number | string): { ppid: number; utime: number; stime: number; cutime: number; cstime: number } {
  // After "pid (comm) ": state is field 0, so ppid is 1 and utime, stime, cutime, cstime 11-14.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').map(Number);
  return { ppid: fields[1]!, utime: fields[11]!, stime: fields[12]!, cutime: fields[13]!, cstime: fields[14]! };
}

/**
 * CPU seconds of the whole Postgres cluster so far: the postmaster with every backend it has
 * reaped (cutime, cstime) and those still running.
 */
export function postgresCpuSeconds(dataDir: string): number {
  const postmaster = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const own = procStat(postmaster);
  let ticks = own.utime + own.stime + own.cutime + own.cstime;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const backend = procStat(pid);
      if (backend.ppid === postmaster) ticks += backend.utime + backend.stime;
    } catch {
      // gone meanwhile
    }
  }
  return ticks / 100;
}
