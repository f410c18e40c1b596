// Small wordings shared by the page's modules.

/** "1 run", "3 runs". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** The message of an error (ApiError's is the server's sentence), for people. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
