// What the kernel says about a process: CPU time and resident memory from /proc (Linux), and a
// description of the machine for the report.
import { readFileSync } from 'node:fs';
import os from 'node:os';

const TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on every Linux ABI

/** User and system CPU seconds of the whole process (all threads), from /proc/<pid>/stat. */
export function cpuTimes(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(rest[11]) / TICKS, sys: Number(rest[12]) / TICKS };
}

/** User + system CPU seconds of the whole process (all threads), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Field 2 (comm) may contain spaces and parentheses: split after its last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / TICKS;
}

/**
 * Seconds the process's main thread (the event loop) spent runnable but waiting for a CPU, from
 * /proc/<pid>/schedstat: time the loop could not run because other processes had the cores.
 */
export function runQueueWaitSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/schedstat`, 'latin1').trim().split(/\s+/);
    return Number(f[1]) / 1e9;
  } catch {
    return NaN;
  }
}

/** Resident set size in bytes, from /proc/<pid>/status (VmRSS). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Whole-machine CPU counters from /proc/stat (ticks): busy and total, all cores. */
export function machineCpu(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = v[3] + (v[4] || 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

export function procAvailable(): boolean {
  try {
    cpuSeconds(process.pid);
    return true;
  } catch {
    return false;
  }
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memGiB: number;
  node: string;
  os: string;
  loadAvg: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAvg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/**
 * Resident bytes of the anonymous read-write mapping of exactly `size` bytes in /proc/<pid>/smaps:
 * a WASM linear memory (V8 maps the accessible part of its reservation as one such region).
 * NaN when none is found.
 */
export function mappingRss(pid: number | 'self', size: number): number {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'latin1');
  } catch {
    return NaN;
  }
  const wantKb = Math.round(size / 1024);
  let candidate = false;
  let sizeOk = false;
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      candidate = head[1].startsWith('rw') && head[2] === '';
      sizeOk = false;
      continue;
    }
    if (!candidate) continue;
    const m = /^(Size|Rss):\s+(\d+) kB/.exec(line);
    if (!m) continue;
    if (m[1] === 'Size') sizeOk = Number(m[2]) === wantKb;
    else if (sizeOk) return Number(m[2]) * 1024;
  }
  return NaN;
}
