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
}

/** MemoryTokenStore keeps the tokens for the life of the page or process: the default. */
export class MemoryTokenStore implements TokenStore {
  #tokens: Tokens | undefined;

  constructor(tokens?: Tokens) {
    this.#tokens = tokens;
  }

  load(): Tokens | undefined {
    return this.#tokens;
  }

  save(tokens: Tokens | undefined): void {
    this.#tokens = tokens;
  }
}
