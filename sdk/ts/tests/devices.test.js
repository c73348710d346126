// The device token against a real backplane dev: kept through the token store, sent
// back at the next sign-in, so a known device is throttled on its own.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Backplane, BackplaneError, MemoryTokenStore } from "../dist/index.js";
import { startDev } from "./dev.js";
import { password, signedUp } from "./helpers.js";

let dev;
before(async () => {
  dev = await startDev({ BACKPLANE_RATE_LIMIT_ANONYMOUS: "6000/m", BACKPLANE_RATE_LIMIT_AUTHENTICATED: "6000/m" });
});
after(async () => {
  await dev?.stop();
});

/** logins wraps fetch and keeps the body of every sign-in request. */
function logins() {
  const bodies = [];
  return {
    bodies,
    fetch: async (req) => {
      if (new URL(req.url).pathname === "/v1/auth/login") bodies.push(await req.clone().json());
      return fetch(req);
    },
  };
}

describe("device token", () => {
  test("the token of the first sign-in is stored, outlives sign-out and is sent with the next", async () => {
    const { email } = await signedUp(dev);
    const store = new MemoryTokenStore();
    const seen = logins();
    const bp = new Backplane({ baseUrl: dev.baseUrl, tokenStore: store, fetch: seen.fetch });
    await bp.signIn(email, password);
    const first = store.loadDeviceToken(email.toLowerCase());
    assert.match(first ?? "", /^bpd_/);
    assert.equal(seen.bodies[0].deviceToken, undefined, "a new device has none to send");

    await bp.signOut();
    assert.equal(store.load(), undefined, "the session is forgotten");
    assert.equal(store.loadDeviceToken(email.toLowerCase()), first, "the device is not");

    // The same device, with the address as the user typed it this time.
    await bp.signIn(` ${email.toUpperCase()} `, password);
    assert.equal(seen.bodies[1].deviceToken, first, "the device said who it is");
    assert.equal(store.loadDeviceToken(email.toLowerCase()), first, "and stays the same device");
  });

  test("a store without device tokens leaves them to the client's memory", async () => {
    const { email } = await signedUp(dev);
    let tokens;
    const seen = logins();
    const bp = new Backplane({ baseUrl: dev.baseUrl, tokenStore: { load: () => tokens, save: (t) => (tokens = t) }, fetch: seen.fetch });
    await bp.signIn(email, password);
    await bp.signIn(email, password);
    assert.equal(seen.bodies[0].deviceToken, undefined);
    assert.match(seen.bodies[1].deviceToken ?? "", /^bpd_/);
  });

  test("a known device signs in while strangers' guesses throttle the account", async () => {
    const { email } = await signedUp(dev);
    const owner = new Backplane({ baseUrl: dev.baseUrl, tokenStore: new MemoryTokenStore() });
    await owner.signIn(email, password);

    const stranger = new Backplane({ baseUrl: dev.baseUrl });
    for (let i = 0; i < 5; i++) {
      // BACKPLANE_LOGIN_MAX_FAILURES' default
      await assert.rejects(stranger.signIn(email, "a wrong guess"), (err) => err instanceof BackplaneError && err.code === "UNAUTHENTICATED");
    }
    await assert.rejects(stranger.signIn(email, password), (err) => err instanceof BackplaneError && err.status === 429, "the stranger is locked out");

    // A client that kept no device token is a stranger too.
    const forgetful = new Backplane({ baseUrl: dev.baseUrl, maxRetries: 0 });
    await assert.rejects(forgetful.signIn(email, password), (err) => err instanceof BackplaneError && err.status === 429);

    const me = await owner.signIn(email, password);
    assert.equal(me.email, email, "the owner's device is known");
  });
});
