import createClient, { type Client } from "openapi-fetch";

import { Assets } from "./assets.js";

import { BackplaneError, type Code, codes, errorFromResponse, errorFromStatus } from "./errors.js";
import type { components, paths } from "./gen/openapi.js";
import { type ProgressListener, withProgress } from "./progress.js";
import { type RateLimit, readRateLimit, retryAfterMs } from "./ratelimit.js";
import { ndjson } from "./stream.js";
import { deviceKey, MemoryTokenStore, type Tokens, type TokenStore } from "./tokens.js";

/** The document's schemas by their full names, such as Schemas["backplane.auth.v1.User"]. */
export type Schemas = components["schemas"];
/** An account. */
export type User = Schemas["backplane.auth.v1.User"];

/**
 * What `signUp` answers: either the new account, signed in (a server in instant mode),
 * or that the link emailed to the address signs in (the default, which answers alike
 * whether or not the address had an account).
 */
export type SignUpResult = { emailVerificationRequired: false; user: User } | { emailVerificationRequired: true; user?: undefined };
/** One message of the notification stream. */
export type NotificationEvent = Schemas["backplane.notification.v1.StreamNotificationsResponse"];

/** A retry the client is about to make, as Options.onRetry hears of it. */
export interface RetryEvent {
  /** The status that is retried: 429 or 503. */
  status: number;
  /** Which retry this is, from 1. */
  attempt: number;
  /** How long the client waits first, in ms. */
  delayMs: number;
}

/** How a Backplane client reaches the server and signs its calls. */
export interface Options {
  /** The REST front door, such as "https://api.example.com" or "http://localhost:8080". */
  baseUrl: string;
  /**
   * An API key ("bpk_..."): every call is made as its owner, with its scopes. There is
   * nothing to refresh, so a 401 is thrown as it comes.
   */
  apiKey?: string;
  /** Where the session's tokens are kept; a MemoryTokenStore unless given. */
  tokenStore?: TokenStore;
  /** The fetch to call; globalThis.fetch unless given. */
  fetch?: (request: Request) => Promise<Response>;
  /** How many times a refused call (429 with Retry-After, 503 on a safe method) is tried again; 2 unless given. */
  maxRetries?: number;
  /** The longest wait the client makes for the caller; a refusal asking for longer is thrown at once. 30 s unless given. */
  maxRetryDelayMs?: number;
  /** How long before its expiry the access token is replaced; 30 s unless given. */
  refreshAheadMs?: number;
  /** Hears of each retry before its wait (to log it, or to show a spinner). */
  onRetry?: (event: RetryEvent) => void;
}

/** Methods a repeated request cannot do twice: a 503 on them is retried. */
const safeMethods = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/**
 * Backplane is a client of the REST API. `api` is an openapi-fetch client whose paths,
 * parameters and bodies are typed from the OpenAPI document; every call it makes is
 * signed (with the session's access token or the API key), retried when the server asks
 * for it, and throws a BackplaneError when the server answers with an error.
 *
 * Sessions: signIn and signUp keep the tokens in the token store. Before a call, an
 * access token about to expire is replaced; a call refused with 401 is made again once,
 * after a refresh. However many calls need a refresh at once, one refresh is made and
 * all of them wait for it: a refresh token is single-use, and the server ends a session
 * whose spent token is presented again.
 */
export class Backplane {
  /** The typed REST client: `await bp.api.GET("/v1/users/me")`. */
  readonly api: Client<paths>;
  /** The budget the last answer reported; undefined before the first. */
  rateLimit: RateLimit | undefined;
  /** Files: upload a File or Blob, download it, or get a URL to it. */
  readonly assets: Assets;

  readonly #apiKey: string | undefined;
  readonly #store: TokenStore;
  readonly #fetch: (request: Request) => Promise<Response>;
  /** Whether the caller chose the fetch: then uploads go through it, even in browsers. */
  readonly #customFetch: boolean;
  /** Device tokens by account, for a token store that keeps none. */
  readonly #devices = new Map<string, string>();
  readonly #maxRetries: number;
  readonly #maxRetryDelayMs: number;
  readonly #refreshAheadMs: number;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;
  /** The same paths, unsigned: sign-in, sign-up and refresh go through it. */
  readonly #public: Client<paths>;

  #tokens: Tokens | undefined;
  #loaded = false;
  #refreshing: Promise<Tokens | undefined> | undefined;
  /** Budgets by whose they are: a signed call spends the user's, an unsigned one the address's. */
  readonly #budgets = new Map<"user" | "anonymous", RateLimit>();

  constructor(options: Options) {
    this.#apiKey = options.apiKey;
    this.#store = options.tokenStore ?? new MemoryTokenStore();
    const f = options.fetch ?? ((r: Request) => globalThis.fetch(r));
    this.#fetch = f;
    this.#customFetch = options.fetch !== undefined;
    this.#maxRetries = options.maxRetries ?? 2;
    this.#maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    this.#refreshAheadMs = options.refreshAheadMs ?? 30_000;
    this.#onRetry = options.onRetry;
    const baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.api = createClient<paths>({ baseUrl, fetch: (r) => this.#send(r, true) });
    this.#public = createClient<paths>({ baseUrl, fetch: (r) => this.#send(r, false) });
    this.assets = new Assets(this, baseUrl);
  }

  /**
   * Creates an account. By default the server signs no one in and answers every sign-up
   * alike, so as not to reveal which addresses have accounts: `emailVerificationRequired`
   * is true, no user is returned, and the link in the email that reaches the address
   * signs in (`verifyEmail`). A server in instant mode (`BACKPLANE_SIGNUP_MODE=instant`)
   * signs the new account in at once: the client keeps its tokens and the user is returned.
   */
  async signUp(body: { email: string; password: string; displayName?: string }): Promise<SignUpResult> {
    const { data } = await this.#public.POST("/v1/auth/signup", { body });
    if (data?.emailVerificationRequired) {
      return { emailVerificationRequired: true };
    }
    await this.#set(tokensFrom(data?.accessToken, data?.refreshToken, data?.expiresIn));
    return { emailVerificationRequired: false, user: data?.user ?? {} };
  }

  /**
   * Spends the token from a verification email's link: the address is verified and the
   * client signed in, in place of any session it held. A disabled account is verified
   * but not signed in.
   */
  async verifyEmail(token: string): Promise<User> {
    const { data } = await this.#public.POST("/v1/auth/email:verify", { body: { token } });
    if (data?.accessToken) {
      await this.#set(tokensFrom(data.accessToken, data.refreshToken, data.expiresIn));
    }
    return data?.user ?? {};
  }

  /**
   * Signs in with an email address and password. The device token the server hands
   * back is kept (in the token store when it keeps them) and sent with the next sign-in
   * to the account: a known device is throttled on its own, so strangers' wrong guesses
   * at the account do not lock it out.
   */
  async signIn(email: string, password: string): Promise<User> {
    const known = await this.#deviceToken(email);
    const { data } = await this.#public.POST("/v1/auth/login", { body: { email, password, ...(known ? { deviceToken: known } : {}) } });
    await this.#set(tokensFrom(data?.accessToken, data?.refreshToken, data?.expiresIn));
    if (data?.deviceToken && data.deviceToken !== known) await this.#saveDeviceToken(email, data.deviceToken);
    return data?.user ?? {};
  }

  async #deviceToken(email: string): Promise<string | undefined> {
    if (this.#store.loadDeviceToken) return (await this.#store.loadDeviceToken(deviceKey(email))) ?? undefined;
    return this.#devices.get(deviceKey(email));
  }

  async #saveDeviceToken(email: string, token: string): Promise<void> {
    if (this.#store.saveDeviceToken) return this.#store.saveDeviceToken(deviceKey(email), token);
    this.#devices.set(deviceKey(email), token);
  }

  /**
   * fetch sends a request the typed client cannot make (raw bytes, say) as every call
   * is sent: signed, refreshed on a 401, retried when the server asks, and thrown as a
   * BackplaneError when the answer is an error. onProgress hears the request body's
   * progress (an upload's).
   */
  fetch(request: Request, options: { onProgress?: ProgressListener } = {}): Promise<Response> {
    const transport = options.onProgress ? withProgress(this.#fetch, options.onProgress, !this.#customFetch) : undefined;
    return this.#send(request, true, transport);
  }

  /**
   * Ends the session on the server and forgets its tokens. The tokens are forgotten
   * even when the server cannot be told (offline): the refresh token then dies at its
   * expiry.
   */
  async signOut(): Promise<void> {
    try {
      if ((await this.#current()) !== undefined) {
        await this.api.POST("/v1/auth/logout", { body: {} });
      }
    } catch (err) {
      if (!(err instanceof BackplaneError && err.status === 401)) {
        await this.#set(undefined);
        throw err;
      }
    }
    await this.#set(undefined);
  }

  /** Whether calls are signed: an API key, or a session's tokens. */
  async signedIn(): Promise<boolean> {
    return this.#apiKey !== undefined || (await this.#current()) !== undefined;
  }

  /**
   * The caller's new in-app notifications as they are sent. The first event carries only
   * the unread count; keep-alives (no notification) follow every 30 seconds. The server
   * may end the stream at any time (a restart): the iteration then ends, and the caller
   * reconnects and calls ListNotifications to catch up. Breaking out of the loop, or
   * aborting signal, closes the connection.
   */
  async *notifications(options: { signal?: AbortSignal } = {}): AsyncGenerator<NotificationEvent, void, undefined> {
    const { data: body } = await this.api.GET("/v1/notifications:stream", {
      parseAs: "stream",
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (!body) return;
    for await (const line of ndjson(body)) {
      const m = line as { result?: NotificationEvent; error?: { code?: number; message?: string } };
      if (m.error) {
        throw errorFromStatus(httpStatus(m.error.code), m.error);
      }
      if (m.result) yield m.result;
    }
  }

  /** #send makes one call: signed when sign is set, retried and refreshed as the class says. */
  async #send(request: Request, sign: boolean, transport = this.#fetch): Promise<Response> {
    let refreshed = false;
    for (let retries = 0; ; ) {
      const req = request.clone();
      let bearer: string | undefined;
      if (sign && !req.headers.has("Authorization")) {
        bearer = await this.#bearer();
        if (bearer !== undefined) req.headers.set("Authorization", `Bearer ${bearer}`);
      }
      const kind = bearer !== undefined ? "user" : "anonymous";
      await this.#waitForBudget(kind, req.signal);

      const res = await transport(req);
      const now = Date.now();
      const rl = readRateLimit(res.headers, now);
      if (rl) {
        this.#budgets.set(kind, rl);
        this.rateLimit = rl;
      }
      if (res.ok) return res;

      if (res.status === 401 && bearer !== undefined && this.#apiKey === undefined && !refreshed) {
        refreshed = true;
        if ((await this.#refresh(bearer)) !== undefined) {
          await res.body?.cancel();
          continue;
        }
      }
      const wait = retryAfterMs(res.headers, now);
      const delay =
        res.status === 429 ? wait : res.status === 503 && safeMethods.has(req.method) ? (wait ?? backoff(retries)) : undefined;
      if (delay !== undefined && retries < this.#maxRetries && delay <= this.#maxRetryDelayMs) {
        retries++;
        this.#onRetry?.({ status: res.status, attempt: retries, delayMs: delay });
        await res.body?.cancel();
        await sleep(delay, req.signal);
        continue;
      }
      throw await errorFromResponse(res, wait);
    }
  }

  /**
   * #waitForBudget holds a call back while the last answer said the budget it would
   * spend is empty, rather than sending it to be refused (refused calls are counted
   * too). RateLimit-Reset is when the whole budget is full again; one call's share of it
   * is free after Reset / Limit. A wait longer than maxRetryDelayMs is not made: the
   * call goes out, and its refusal reaches the caller.
   */
  async #waitForBudget(kind: "user" | "anonymous", signal: AbortSignal): Promise<void> {
    const rl = this.#budgets.get(kind);
    if (!rl || rl.remaining > 0 || rl.limit <= 0) return;
    this.#budgets.delete(kind);
    const wait = Math.ceil((rl.resetAt - Date.now()) / rl.limit);
    if (wait > 0 && wait <= this.#maxRetryDelayMs) await sleep(wait, signal);
  }

  /** #bearer is the credential for a signed call, refreshed first when about to expire. */
  async #bearer(): Promise<string | undefined> {
    if (this.#apiKey !== undefined) return this.#apiKey;
    const t = await this.#current();
    if (t === undefined) return undefined;
    if (this.#fresh(t)) return t.accessToken;
    return (await this.#refresh(t.accessToken))?.accessToken;
  }

  #fresh(t: Tokens): boolean {
    return t.expiresAt === undefined || Date.now() < t.expiresAt - this.#refreshAheadMs;
  }

  async #current(): Promise<Tokens | undefined> {
    if (!this.#loaded) {
      const t = await this.#store.load();
      if (!this.#loaded) {
        this.#tokens = t;
        this.#loaded = true;
      }
    }
    return this.#tokens;
  }

  async #set(t: Tokens | undefined): Promise<void> {
    this.#tokens = t;
    this.#loaded = true;
    await this.#store.save(t);
  }

  /**
   * #refresh replaces the access token stale, and resolves to the new tokens, or to
   * undefined when the session has ended (the tokens are then forgotten). Callers that
   * arrive while a refresh is in flight wait for it; one that arrives after it finds
   * stale replaced already.
   */
  #refresh(stale: string): Promise<Tokens | undefined> {
    this.#refreshing ??= this.#doRefresh(stale).finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #doRefresh(stale: string): Promise<Tokens | undefined> {
    const t = await this.#current();
    if (t === undefined) return undefined;
    if (t.accessToken !== stale && this.#fresh(t)) return t;
    const spent = t.refreshToken;
    let next: Tokens | undefined;
    try {
      const { data } = await this.#public.POST("/v1/auth/refresh", { body: { refreshToken: spent } });
      next = tokensFrom(data?.accessToken, data?.refreshToken, data?.expiresIn);
    } catch (err) {
      if (!(err instanceof BackplaneError && err.code === "UNAUTHENTICATED")) throw err;
      next = undefined; // signed out elsewhere, revoked or expired
    }
    // A sign-in or sign-out while the refresh was in flight wins: its session is the
    // client's now.
    if (this.#tokens?.refreshToken === spent) await this.#set(next);
    return next === undefined ? undefined : this.#tokens;
  }
}

/**
 * data returns a call's answer, for calls that throw on errors (every call of
 * Backplane.api): `const me = await data(bp.api.GET("/v1/users/me"))`.
 */
export async function data<T>(call: Promise<{ data?: T; response: Response }>): Promise<T> {
  const r = await call;
  return r.data as T;
}

function tokensFrom(access: string | undefined, refresh: string | undefined, expiresIn: string | undefined): Tokens {
  if (!access || !refresh) {
    throw new BackplaneError({ status: 200, code: "INTERNAL", message: "the answer carried no tokens" });
  }
  const seconds = Number(expiresIn);
  return {
    accessToken: access,
    refreshToken: refresh,
    ...(Number.isFinite(seconds) && seconds > 0 ? { expiresAt: Date.now() + seconds * 1000 } : {}),
  };
}

/** backoff is the wait before retry n (from 0) when the server named none: 0.5 s, 1 s, 2 s..., with jitter. */
function backoff(n: number): number {
  const base = 500 * 2 ** n;
  return Math.round(base / 2 + Math.random() * (base / 2));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The HTTP status the REST edge sends for a gRPC code (grpc-gateway's mapping). */
const httpStatusByCode: Partial<Record<Code, number>> = {
  CANCELLED: 499,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 400,
  ABORTED: 409,
  OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501,
  UNAVAILABLE: 503,
  UNAUTHENTICATED: 401,
};

function httpStatus(code: number | undefined): number {
  const name = code !== undefined ? codes[code] : undefined;
  return (name && httpStatusByCode[name]) || 500;
}
