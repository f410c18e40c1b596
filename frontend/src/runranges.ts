// Run numbers written as ranges, as people type them and the server reads them
// ("17, 20-22"; the server's parser is runtable's run-range module).

/** `[17, 20, 21, 22]` → `"17, 20-22"` (what the reprocess dialog prefills). */
export function compressRuns(runs: number[]): string {
  const sorted = [...new Set(runs)].sort((a, b) => a - b);
  const parts: string[] = [];
  let first: number | null = null;
  let last = 0;
  for (const run of [...sorted, Number.NaN]) {
    if (first !== null && run === last + 1) {
      last = run;
      continue;
    }
    if (first !== null) parts.push(first === last ? String(first) : `${first}-${last}`);
    first = run;
    last = run;
  }
  return parts.join(", ");
}
