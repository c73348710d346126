/**
 * Errors as the REST edge reports them: the google.rpc.Status a gRPC client would get,
 * as JSON ({code, message, details}), under the HTTP status its code maps to.
 *
 * An error's message reaches end users of an app only if the app shows it: the server
 * writes messages for developers and never puts internals in them.
 */

/** The gRPC status codes, by the number the JSON body carries. */
export const codes = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** A gRPC status code by name, such as "INVALID_ARGUMENT". */
export type Code = (typeof codes)[number];

/** One field a request got wrong (google.rpc.BadRequest.FieldViolation). */
export interface FieldViolation {
  /** The field as the request's JSON names it, such as "password". */
  field: string;
  description: string;
  reason?: string;
}

/** google.rpc.BadRequest: the request's invalid fields. */
export interface BadRequestDetail {
  "@type": "type.googleapis.com/google.rpc.BadRequest";
  fieldViolations?: FieldViolation[];
}

/** google.rpc.RetryInfo: how long to wait before trying again, such as "1.500s". */
export interface RetryInfoDetail {
  "@type": "type.googleapis.com/google.rpc.RetryInfo";
  retryDelay?: string;
}

/** google.rpc.QuotaFailure: which quotas the call would exceed. */
export interface QuotaFailureDetail {
  "@type": "type.googleapis.com/google.rpc.QuotaFailure";
  violations?: { subject?: string; description?: string; apiService?: string; quotaMetric?: string; quotaId?: string }[];
}

/** google.rpc.ErrorInfo: a machine-readable reason in a domain. */
export interface ErrorInfoDetail {
  "@type": "type.googleapis.com/google.rpc.ErrorInfo";
  reason?: string;
  domain?: string;
  metadata?: Record<string, string>;
}

/** A detail of a type this SDK does not model; its JSON is kept as sent. */
export interface OtherDetail {
  "@type": string;
  [field: string]: unknown;
}

/** One entry of an error's details, discriminated by "@type". */
export type ErrorDetail = BadRequestDetail | RetryInfoDetail | QuotaFailureDetail | ErrorInfoDetail | OtherDetail;

/** What the server sent, as BackplaneError's constructor takes it. */
export interface ErrorInit {
  status: number;
  code: Code;
  message: string;
  details?: ErrorDetail[];
  requestId?: string | undefined;
  retryAfterMs?: number | undefined;
}

/**
 * The one error type a call throws when the server answers with an error status.
 * Network failures reach the caller as the platform's fetch errors (a TypeError), and an
 * aborted call as the AbortSignal's reason.
 */
export class BackplaneError extends Error {
  /** The HTTP status, such as 400 or 429. */
  readonly status: number;
  /** The gRPC code, such as "INVALID_ARGUMENT": finer than the HTTP status. */
  readonly code: Code;
  /** The details the server attached, as sent. */
  readonly details: ErrorDetail[];
  /** The X-Request-Id the server logged the call under: quote it when reporting a bug. */
  readonly requestId: string | undefined;
  /** How long the server asked the client to wait (Retry-After or RetryInfo), in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(init: ErrorInit) {
    super(init.message);
    this.name = "BackplaneError";
    this.status = init.status;
    this.code = init.code;
    this.details = init.details ?? [];
    this.requestId = init.requestId;
    this.retryAfterMs = init.retryAfterMs ?? retryInfoMs(this.details);
  }

  /** The invalid fields a BadRequest detail lists; empty when there is none. */
  get fieldViolations(): FieldViolation[] {
    return this.details.flatMap((d) => (isBadRequest(d) ? (d.fieldViolations ?? []) : []));
  }

  /** The reason of the ErrorInfo detail, such as "ASSET_TOO_LARGE", if the server sent one. */
  get reason(): string | undefined {
    return this.detail("type.googleapis.com/google.rpc.ErrorInfo")?.reason;
  }

  /** The detail of the given type, if the server sent one. */
  detail<T extends ErrorDetail["@type"]>(type: T): Extract<ErrorDetail, { "@type": T }> | undefined {
    return this.details.find((d) => d["@type"] === type) as Extract<ErrorDetail, { "@type": T }> | undefined;
  }
}

function isBadRequest(d: ErrorDetail): d is BadRequestDetail {
  return d["@type"] === "type.googleapis.com/google.rpc.BadRequest";
}

/** The delay a RetryInfo detail asks for, in ms. */
function retryInfoMs(details: ErrorDetail[]): number | undefined {
  for (const d of details) {
    if (d["@type"] === "type.googleapis.com/google.rpc.RetryInfo") {
      const s = parseDuration((d as RetryInfoDetail).retryDelay);
      if (s !== undefined) return s;
    }
  }
  return undefined;
}

/** parseDuration reads a protobuf JSON Duration ("1.5s") as ms. */
export function parseDuration(v: string | undefined): number | undefined {
  if (!v || !v.endsWith("s")) return undefined;
  const seconds = Number(v.slice(0, -1));
  return Number.isFinite(seconds) && seconds >= 0 ? Math.round(seconds * 1000) : undefined;
}

/** codeFor names the gRPC code of a JSON status, or guesses one from the HTTP status. */
function codeFor(jsonCode: unknown, status: number): Code {
  if (typeof jsonCode === "number" && jsonCode > 0 && jsonCode < codes.length) {
    return codes[jsonCode] as Code;
  }
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 409:
      return "ABORTED";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 501:
      return "UNIMPLEMENTED";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return status >= 500 ? "INTERNAL" : "UNKNOWN";
  }
}

/**
 * errorFromStatus builds the error for a status the server sent as JSON, or for any
 * other body (a proxy's HTML page) from the HTTP status alone.
 */
export function errorFromStatus(status: number, body: unknown, requestId?: string, retryAfterMs?: number): BackplaneError {
  const s = (typeof body === "object" && body !== null ? body : {}) as { code?: unknown; message?: unknown; details?: unknown };
  return new BackplaneError({
    status,
    code: codeFor(s.code, status),
    message: typeof s.message === "string" && s.message !== "" ? s.message : `HTTP ${status}`,
    details: Array.isArray(s.details) ? (s.details as ErrorDetail[]) : [],
    requestId,
    retryAfterMs,
  });
}

/** errorFromResponse reads an error response's body into a BackplaneError. */
export async function errorFromResponse(res: Response, retryAfterMs?: number): Promise<BackplaneError> {
  let body: unknown;
  try {
    body = JSON.parse(await res.text());
  } catch {
    body = undefined;
  }
  return errorFromStatus(res.status, body, res.headers.get("X-Request-Id") ?? undefined, retryAfterMs);
}
