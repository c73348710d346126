// The SDK against a real backplane dev: sessions, refresh, API keys, typed errors and the
// notification stream.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Backplane, BackplaneError, data, MemoryTokenStore } from "../dist/index.js";
import { startDev } from "./dev.js";
import { counting, email, password, signedUp, verificationToken } from "./helpers.js";

let dev;
before(async () => {
  // Every test calls from one address: a budget that they would share is set wide here
  // (ratelimit.test.js tests the budget).
  dev = await startDev({ BACKPLANE_RATE_LIMIT_ANONYMOUS: "6000/m", BACKPLANE_RATE_LIMIT_AUTHENTICATED: "6000/m" });
});
after(async () => {
  await dev?.stop();
});

describe("sessions", () => {
  test("sign-up answers alike for any address and signs no one in; the emailed link signs in", async () => {
    const bp = new Backplane({ baseUrl: dev.baseUrl });
    const address = email();
    const first = await bp.signUp({ email: address, password, displayName: "Ada" });
    assert.deepEqual(first, { emailVerificationRequired: true });
    assert.equal(await bp.signedIn(), false);
    const again = await bp.signUp({ email: address, password, displayName: "Ada" });
    assert.deepEqual(again, first, "a taken address answers as a new one");

    const user = await bp.verifyEmail(await verificationToken(dev, address));
    assert.equal(user.emailVerified, true);
    assert.equal(await bp.signedIn(), true);
    const me = await data(bp.api.GET("/v1/users/me"));
    assert.equal(me.user?.email, address);
    assert.equal(me.user?.emailVerified, true);
  });

  test("in instant mode, sign-up signs in at once", async () => {
    const instant = await startDev({ BACKPLANE_SIGNUP_MODE: "instant" });
    try {
      const bp = new Backplane({ baseUrl: instant.baseUrl });
      const address = email();
      const result = await bp.signUp({ email: address, password, displayName: "Ada" });
      assert.equal(result.emailVerificationRequired, false);
      assert.equal(result.user?.email, address);
      assert.equal(await bp.signedIn(), true);
      const me = await data(bp.api.GET("/v1/users/me"));
      assert.equal(me.user?.emailVerified, false);
      await assert.rejects(bp.signUp({ email: address, password, displayName: "Ada" }), (err) => err instanceof BackplaneError && err.status === 409);
    } finally {
      await instant.stop();
    }
  });

  test("sign-in with a password, and sign-out ends the session on the server", async () => {
    const { email: address } = await signedUp(dev);
    const store = new MemoryTokenStore();
    const bp = new Backplane({ baseUrl: dev.baseUrl, tokenStore: store });
    const user = await bp.signIn(address, password);
    assert.equal(user.email, address);
    const tokens = store.load();
    assert.ok(tokens?.accessToken && tokens.refreshToken && tokens.expiresAt > Date.now());

    await bp.signOut();
    assert.equal(store.load(), undefined, "the tokens are forgotten");
    assert.equal(await bp.signedIn(), false);
    // The old refresh token no longer buys a pair.
    const stale = new Backplane({ baseUrl: dev.baseUrl, tokenStore: new MemoryTokenStore({ ...tokens, accessToken: "expired" }) });
    await assert.rejects(stale.api.GET("/v1/users/me"), (err) => err instanceof BackplaneError && err.code === "UNAUTHENTICATED");
  });

  test("a 401 that a refresh fixes is retried once, with one refresh however many calls are in flight", async () => {
    const { bp } = await signedUp(dev, { tokenStore: new MemoryTokenStore() });
    const calls = counting();
    const signedIn = await captureTokens(bp);
    // A client that starts with an access token the server refuses (a restart after the
    // signing key rotated, say) and the session's refresh token.
    const store = new MemoryTokenStore({ accessToken: "not-a-valid-token", refreshToken: signedIn.refreshToken });
    const client = new Backplane({ baseUrl: dev.baseUrl, tokenStore: store, fetch: calls.fetch });

    const answers = await Promise.all(Array.from({ length: 6 }, () => data(client.api.GET("/v1/users/me"))));
    for (const a of answers) assert.ok(a.user?.id);
    assert.equal(calls.of("/v1/auth/refresh"), 1, "one refresh served every call");
    assert.equal(calls.of("/v1/users/me"), 12, "each call was made twice: refused, then with the new token");
    assert.notEqual(store.load()?.refreshToken, signedIn.refreshToken, "the new pair is stored");

    // The server's reuse detection did not trip: the session lives on, and refreshes again.
    const sessions = await data(client.api.GET("/v1/auth/sessions"));
    assert.ok(sessions.sessions?.some((s) => s.current));
  });

  test("an access token about to expire is replaced before the call", async () => {
    const { bp } = await signedUp(dev);
    const t = await captureTokens(bp);
    const calls = counting();
    const store = new MemoryTokenStore({ ...t, expiresAt: Date.now() + 1000 });
    const client = new Backplane({ baseUrl: dev.baseUrl, tokenStore: store, fetch: calls.fetch });
    await data(client.api.GET("/v1/users/me"));
    assert.equal(calls.of("/v1/auth/refresh"), 1);
    assert.equal(calls.status(401), 0, "no call left with the old token");
    assert.ok(store.load().expiresAt > Date.now() + 60_000);
  });

  test("a 401 a refresh cannot fix is thrown, and the dead session forgotten", async () => {
    const { email: address } = await signedUp(dev);
    const first = new MemoryTokenStore();
    const signedOut = new Backplane({ baseUrl: dev.baseUrl, tokenStore: first });
    await signedOut.signIn(address, password);
    const t = first.load();
    await signedOut.signOut();
    const calls = counting();
    const store = new MemoryTokenStore({ ...t, accessToken: "not-a-valid-token" });
    const client = new Backplane({ baseUrl: dev.baseUrl, tokenStore: store, fetch: calls.fetch });
    await assert.rejects(data(client.api.GET("/v1/users/me")), (err) => {
      assert.ok(err instanceof BackplaneError);
      assert.equal(err.status, 401);
      assert.equal(err.code, "UNAUTHENTICATED");
      assert.ok(err.requestId, "the request id to quote");
      return true;
    });
    assert.equal(calls.of("/v1/auth/refresh"), 1);
    assert.equal(calls.of("/v1/users/me"), 1, "the call was not repeated without a new token");
    assert.equal(store.load(), undefined);
  });
});

describe("API keys", () => {
  test("a key signs calls within its scopes, and is refused beyond them", async () => {
    // Only a verified address may create keys: signedUp followed the verification link.
    const { bp } = await signedUp(dev);
    const created = await data(bp.api.POST("/v1/api-keys", { body: { displayName: "ci", scopes: ["profile:read"] } }));
    assert.match(created.secret ?? "", /^bpk_/);

    const calls = counting();
    const keyed = new Backplane({ baseUrl: dev.baseUrl, apiKey: created.secret, fetch: calls.fetch });
    const me = await data(keyed.api.GET("/v1/users/me"));
    assert.ok(me.user?.id);
    await assert.rejects(keyed.api.GET("/v1/api-keys"), (err) => err instanceof BackplaneError && err.status === 403 && err.code === "PERMISSION_DENIED");

    const wrong = new Backplane({ baseUrl: dev.baseUrl, apiKey: "bpk_not_a_key", fetch: calls.fetch });
    await assert.rejects(wrong.api.GET("/v1/users/me"), (err) => err instanceof BackplaneError && err.status === 401);
    assert.equal(calls.of("/v1/auth/refresh"), 0, "an API key is never refreshed");
  });
});

describe("errors", () => {
  test("an invalid request throws INVALID_ARGUMENT with the fields as the JSON names them", async () => {
    const bp = new Backplane({ baseUrl: dev.baseUrl });
    await assert.rejects(bp.signUp({ email: email(), password: "short", displayName: "Ada" }), (err) => {
      assert.ok(err instanceof BackplaneError);
      assert.equal(err.status, 400);
      assert.equal(err.code, "INVALID_ARGUMENT");
      assert.deepEqual(
        err.fieldViolations.map((v) => v.field),
        ["password"],
      );
      assert.ok(err.detail("type.googleapis.com/google.rpc.BadRequest"));
      return true;
    });
    assert.equal(await bp.signedIn(), false);
  });

  test("a wrong password throws UNAUTHENTICATED", async () => {
    const { email: address } = await signedUp(dev);
    const bp = new Backplane({ baseUrl: dev.baseUrl });
    await assert.rejects(bp.signIn(address, "not the password at all"), (err) => err instanceof BackplaneError && err.code === "UNAUTHENTICATED");
  });
});

describe("notification stream", () => {
  test("events arrive as an async iterator, and breaking out closes the stream", async () => {
    const { bp } = await signedUp(dev);
    const events = bp.notifications();
    const first = await events.next();
    assert.equal(first.value.unreadCount, 0);
    assert.equal(first.value.notification, undefined);

    // Usage past 80% of the free plan's API calls raises an in-app alert.
    await data(bp.api.POST("/v1/usage:record", { body: { meter: "api_calls", quantity: "85000", idempotencyKey: "sdk-stream-test" } }));
    let alert;
    for await (const e of { [Symbol.asyncIterator]: () => events }) {
      if (e.notification) {
        alert = e;
        break;
      }
    }
    assert.match(alert.notification.title ?? "", /80%/);
    assert.equal(alert.unreadCount, 1);
    const done = await events.next();
    assert.equal(done.done, true, "the iterator is finished after a break");

    const listed = await data(bp.api.GET("/v1/notifications"));
    assert.equal(listed.notifications?.[0]?.id, alert.notification.id);
  });

  test("an unauthenticated stream throws a typed error", async () => {
    const bp = new Backplane({ baseUrl: dev.baseUrl });
    await assert.rejects(bp.notifications().next(), (err) => err instanceof BackplaneError && err.status === 401);
  });

  test("aborting the signal ends the iteration", async () => {
    const { bp } = await signedUp(dev);
    const ctl = new AbortController();
    const events = bp.notifications({ signal: ctl.signal });
    await events.next();
    ctl.abort();
    await assert.rejects(events.next(), (err) => err.name === "AbortError");
  });
});

/** captureTokens signs in again as bp's user would to read a token pair. */
async function captureTokens(bp) {
  const me = await data(bp.api.GET("/v1/users/me"));
  const store = new MemoryTokenStore();
  await new Backplane({ baseUrl: dev.baseUrl, tokenStore: store }).signIn(me.user.email, password);
  return store.load();
}
