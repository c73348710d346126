/** A signed-in user's tokens, as the client keeps them between calls. */
export interface Tokens {
  /** The short-lived JWT sent as `Authorization: Bearer ...`. */
  accessToken: string;
  /** The single-use token that buys the next pair. */
  refreshToken: string;
  /** When the access token expires, as a Date.now() value; unknown if unset. */
  expiresAt?: number;
}

/**
 * Where the client keeps the session's tokens, so that an app can keep a user signed in
 * across restarts (localStorage, a keychain, a file). Every sign-in, refresh and
 * sign-out saves; the first call that needs a token loads. Refresh tokens are single-use
 * and the server ends a session whose spent token is presented again: a store shared by
 * two clients (two tabs) must let only one of them refresh.
 */
export interface TokenStore {
  load(): Tokens | undefined | Promise<Tokens | undefined>;
  /** save stores the new tokens, or forgets them when given undefined. */
  save(tokens: Tokens | undefined): void | Promise<void>;
  /**
   * loadDeviceToken returns the device token the last sign-in to the account (its
   * email address, lower-cased) returned on this device. A store without these two
   * methods leaves the client to keep device tokens in memory. Unlike the session's
   * tokens, a device token outlives sign-out: it names the device, not the session.
   */
  loadDeviceToken?(account: string): string | undefined | Promise<string | undefined>;
  /** saveDeviceToken keeps the account's device token for the next sign-in. */
  saveDeviceToken?(account: string, token: string): void | Promise<void>;
}

/** deviceKey is the account a device token is kept under: its address, as the server compares them. */
export function deviceKey(email: string): string {
  return email.trim().toLowerCase();
}

/** MemoryTokenStore keeps the tokens for the life of the page or process: the default. */
export class MemoryTokenStore implements TokenStore {
  #tokens: Tokens | undefined;
  readonly #devices = new Map<string, string>();

  constructor(tokens?: Tokens) {
    this.#tokens = tokens;
  }

  load(): Tokens | undefined {
    return this.#tokens;
  }

  save(tokens: Tokens | undefined): void {
    this.#tokens = tokens;
  }

  loadDeviceToken(account: string): string | undefined {
    return this.#devices.get(account);
  }

  saveDeviceToken(account: string, token: string): void {
    this.#devices.set(account, token);
  }
}

/**
 * WebStorageTokenStore keeps the session's tokens and the device tokens in a Web
 * Storage (localStorage, so that a reload or a new tab finds the user signed in and the
 * browser known), under keys starting with prefix.
 */
export class WebStorageTokenStore implements TokenStore {
  readonly #storage: Storage;
  readonly #prefix: string;

  constructor(storage: Storage, prefix = "backplane.") {
    this.#storage = storage;
    this.#prefix = prefix;
  }

  load(): Tokens | undefined {
    const raw = this.#storage.getItem(`${this.#prefix}tokens`);
    return raw ? (JSON.parse(raw) as Tokens) : undefined;
  }

  save(tokens: Tokens | undefined): void {
    if (tokens) this.#storage.setItem(`${this.#prefix}tokens`, JSON.stringify(tokens));
    else this.#storage.removeItem(`${this.#prefix}tokens`);
  }

  loadDeviceToken(account: string): string | undefined {
    return this.#storage.getItem(`${this.#prefix}device:${account}`) ?? undefined;
  }

  saveDeviceToken(account: string, token: string): void {
    this.#storage.setItem(`${this.#prefix}device:${account}`, token);
  }
}
