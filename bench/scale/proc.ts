/**
 * Memory and CPU of the benchmark's processes, from /proc (Linux): a process's resident
 * set (VmRSS) and peak (VmHWM), and the CPU seconds a process or a whole process group
 * (moto, the Temporal dev server: started detached, each its own group) has used.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc reports CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

export interface Memory {
  rssBytes: number;
  peakRssBytes: number;
}

export function memoryOf(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

interface Stat {
  pgrp: number;
  cpuSeconds: number;
}

function statOf(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its closing one.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    return { pgrp: Number(fields[2]), cpuSeconds: ticks / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** CPU seconds used by one process (its reaped children included). */
export function cpuSecondsOf(pid: number): number | undefined {
  return statOf(pid)?.cpuSeconds;
}

/** CPU seconds used by every live process of a process group, and their summed resident sets. */
export function groupUsage(pgid: number): { cpuSeconds: number; rssBytes: number } {
  let cpuSeconds = 0;
  let rssBytes = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = statOf(Number(entry));
    if (stat?.pgrp !== pgid) continue;
    cpuSeconds += stat.cpuSeconds;
    rssBytes += memoryOf(Number(entry))?.rssBytes ?? 0;
  }
  return { cpuSeconds, rssBytes };
}

/** Who to account CPU to: single processes by pid, servers by process group. */
export interface CpuTargets {
  worker?: number;
  fleet?: number;
  motoGroup?: number;
  temporalGroup?: number;
}

/** CPU seconds used so far by each target and by this process ("bench"). */
export function cpuNow(targets: CpuTargets): Record<string, number> {
  const usage = process.cpuUsage();
  const out: Record<string, number> = { bench: (usage.user + usage.system) / 1e6 };
  if (targets.worker) out.worker = cpuSecondsOf(targets.worker) ?? 0;
  if (targets.fleet) out.fleet = cpuSecondsOf(targets.fleet) ?? 0;
  if (targets.motoGroup) out.moto = groupUsage(targets.motoGroup).cpuSeconds;
  if (targets.temporalGroup) out.temporal = groupUsage(targets.temporalGroup).cpuSeconds;
  return out;
}

/** CPU seconds each target used between two readings, to 0.1 s. */
export function cpuDiff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, Math.round((v - (before[k] ?? 0)) * 10) / 10]));
}
