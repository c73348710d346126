// RateLimit-* and Retry-After against a real backplane dev whose budget is small: two
// calls, one more every two seconds.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Backplane, BackplaneError, data } from "../dist/index.js";
import { startDev } from "./dev.js";
import { counting } from "./helpers.js";

let dev;
before(async () => {
  dev = await startDev({ BACKPLANE_RATE_LIMIT_ANONYMOUS: "30/m,burst=2" });
});
after(async () => {
  await dev?.stop();
});

/** drain spends the address's budget: it calls until the server refuses. */
async function drain() {
  for (;;) {
    const res = await fetch(`${dev.baseUrl}/v1/plans`);
    await res.arrayBuffer();
    if (res.status === 429) return;
  }
}

test("a client that read an empty budget waits for it instead of being refused", async () => {
  const calls = counting();
  const bp = new Backplane({ baseUrl: dev.baseUrl, fetch: calls.fetch });
  for (let i = 0; i < 4; i++) {
    const plans = await data(bp.api.GET("/v1/plans"));
    assert.ok(plans.plans?.length);
  }
  assert.equal(calls.status(429), 0, "no call was sent to be refused");
  assert.equal(bp.rateLimit?.limit, 2);
});

test("a refused call is retried after the server's Retry-After", async () => {
  // A refill between drain() and the call lets the call through unrefused: then drain
  // and call again, until the refusal this test is about happens.
  for (;;) {
    await drain();
    const retries = [];
    const bp = new Backplane({ baseUrl: dev.baseUrl, onRetry: (e) => retries.push(e) });
    const plans = await data(bp.api.GET("/v1/plans"));
    assert.ok(plans.plans?.length);
    if (retries.length === 0) continue;
    assert.equal(retries.length, 1);
    assert.equal(retries[0].status, 429);
    assert.ok(retries[0].delayMs >= 1000 && retries[0].delayMs % 1000 === 0, "the wait is the server's, in whole seconds");
    return;
  }
});

test("a refusal that asks for a longer wait than the client allows is thrown, typed", async () => {
  for (;;) {
    await drain();
    const retries = [];
    const bp = new Backplane({ baseUrl: dev.baseUrl, maxRetryDelayMs: 500, onRetry: (e) => retries.push(e) });
    let err;
    try {
      await bp.api.GET("/v1/plans");
      continue; // refilled in between: try again
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof BackplaneError);
    assert.equal(err.status, 429);
    assert.equal(err.code, "RESOURCE_EXHAUSTED");
    assert.ok(err.retryAfterMs >= 1000);
    assert.equal(retries.length, 0);
    return;
  }
});
