/**
 * The REST edge reports each caller's budget on every answer (RateLimit-Limit,
 * RateLimit-Remaining, RateLimit-Reset; draft-ietf-httpapi-ratelimit-headers) and, when
 * it refuses a call, how long to wait (Retry-After).
 */

/** A caller's budget as the last answer reported it. */
export interface RateLimit {
  /** Calls the window allows. */
  limit: number;
  /** Calls left in the window. */
  remaining: number;
  /** When the window resets, as a Date.now() value. */
  resetAt: number;
}

/** readRateLimit reads the RateLimit-* headers, if the answer carries them. */
export function readRateLimit(h: Headers, now: number): RateLimit | undefined {
  const limit = num(h.get("RateLimit-Limit"));
  const remaining = num(h.get("RateLimit-Remaining"));
  const reset = num(h.get("RateLimit-Reset"));
  if (limit === undefined || remaining === undefined || reset === undefined) return undefined;
  return { limit, remaining, resetAt: now + reset * 1000 };
}

/**
 * retryAfterMs reads Retry-After, in seconds or as an HTTP date, as a delay in ms from
 * now.
 */
export function retryAfterMs(h: Headers, now: number): number | undefined {
  const v = h.get("Retry-After");
  if (v === null || v.trim() === "") return undefined;
  const seconds = num(v);
  if (seconds !== undefined) return seconds * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function num(v: string | null): number | undefined {
  if (v === null) return undefined;
  const n = Number(v.trim());
  return v.trim() !== "" && Number.isFinite(n) && n >= 0 ? n : undefined;
}
