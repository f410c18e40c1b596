// A running job's progress (`job_progress` events, `progress` of `GET /api/jobs`):
// which variable it computes, how many of its variables are done, and the variable's
// own steps (docs/context-files.md, "Reporting progress from inside a variable").

import type { JobProgress as JobProgressEvent } from "./generated/events";

/**
 * What the page keeps of a job's progress: the fields of its last `job_progress` event
 * (`variable` is "" once all are done; `steps` null when the variable reports none;
 * `variable_s` the seconds spent in the variable when the report was made).
 */
export type JobProgress = Pick<JobProgressEvent, "variable" | "done" | "total" | "step" | "steps" | "variable_s"> & {
  /** When this page received the report (epoch seconds): the time in the variable
   * keeps counting between reports, which come only when something changed. */
  received?: number;
};

/** The progress fields of a `job_progress` event, stamped with when it arrived. */
export function progressOf(event: JobProgressEvent): JobProgress {
  const { variable, done, total, step, steps, variable_s } = event;
  return { variable, done, total, step, steps, variable_s, received: Date.now() / 1000 };
}

/** `"agipd_mean, 3 of 14, 41 s (1200 of 10000)"`: the third of 14 variables is being computed. */
export function progressText(p: JobProgress): string {
  if (p.variable === "") return `${p.done} of ${p.total} done`;
  const since = p.received === undefined ? 0 : Math.max(0, Date.now() / 1000 - p.received);
  let out = `${p.variable}, ${p.done + 1} of ${p.total}, ${Math.round(p.variable_s + since)} s`;
  if (p.steps !== null && p.steps > 0) out += ` (${p.step} of ${p.steps})`;
  else if (p.step > 0) out += ` (${p.step} done)`;
  return out;
}

/** The job's overall fraction done, 0–1: whole variables plus the current one's steps. */
export function progressFraction(p: JobProgress): number {
  if (p.total <= 0) return 0;
  const inner = p.steps !== null && p.steps > 0 ? Math.min(1, p.step / p.steps) : 0;
  return Math.min(1, (p.done + (p.variable === "" ? 0 : inner)) / p.total);
}
