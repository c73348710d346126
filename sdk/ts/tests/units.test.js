// The SDK's parsing, on inputs a server seldom sends on cue: JSON lines split across
// chunks, Retry-After as a date, error bodies that are not JSON.
import assert from "node:assert/strict";
import { test } from "node:test";

import { BackplaneError } from "../dist/index.js";
import { errorFromResponse, errorFromStatus, parseDuration } from "../dist/errors.js";
import { readRateLimit, retryAfterMs } from "../dist/ratelimit.js";
import { ndjson } from "../dist/stream.js";

function body(...chunks) {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(typeof chunk === "string" ? enc.encode(chunk) : chunk);
      c.close();
    },
  });
}

async function all(it) {
  const out = [];
  for await (const v of it) out.push(v);
  return out;
}

test("JSON lines split anywhere, even inside a character, are read whole", async () => {
  const euro = new TextEncoder().encode('{"result":{"title":"€"}}\n');
  const split = euro.indexOf(0xe2) + 1; // inside the three bytes of €
  const got = await all(ndjson(body('{"result":{"unread', 'Count":1}}\n\n', euro.slice(0, split), euro.slice(split), '{"last":true}')));
  assert.deepEqual(got, [{ result: { unreadCount: 1 } }, { result: { title: "€" } }, { last: true }]);
});

test("stopping early cancels the body", async () => {
  let cancelled = false;
  const stream = new ReadableStream({
    pull(c) {
      c.enqueue(new TextEncoder().encode('{"n":1}\n'));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const v of ndjson(stream)) {
    assert.deepEqual(v, { n: 1 });
    break;
  }
  assert.equal(cancelled, true);
});

test("RateLimit-* and Retry-After are read in seconds or as a date", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  const h = new Headers({ "RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "6" });
  assert.deepEqual(readRateLimit(h, now), { limit: 10, remaining: 0, resetAt: now + 6000 });
  assert.equal(readRateLimit(new Headers({ "RateLimit-Limit": "10" }), now), undefined);
  assert.equal(retryAfterMs(new Headers({ "Retry-After": "3" }), now), 3000);
  assert.equal(retryAfterMs(new Headers({ "Retry-After": "Thu, 01 Jan 2026 00:00:05 GMT" }), now), 5000);
  assert.equal(retryAfterMs(new Headers({ "Retry-After": "soon" }), now), undefined);
  assert.equal(retryAfterMs(new Headers(), now), undefined);
});

test("errors decode the status JSON, and fall back to the HTTP status for any other body", async () => {
  const e = errorFromStatus(429, {
    code: 8,
    message: "quota spent",
    details: [
      { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "1.500s" },
      { "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ subject: "api_calls" }] },
    ],
  });
  assert.ok(e instanceof BackplaneError && e instanceof Error);
  assert.equal(e.code, "RESOURCE_EXHAUSTED");
  assert.equal(e.retryAfterMs, 1500, "RetryInfo when there is no Retry-After");
  assert.equal(e.detail("type.googleapis.com/google.rpc.QuotaFailure")?.violations?.[0]?.subject, "api_calls");
  assert.deepEqual(e.fieldViolations, []);

  const html = await errorFromResponse(new Response("<html>Bad gateway</html>", { status: 502, headers: { "X-Request-Id": "r1" } }));
  assert.equal(html.code, "INTERNAL");
  assert.equal(html.message, "HTTP 502");
  assert.equal(html.requestId, "r1");
  assert.equal((await errorFromResponse(new Response("", { status: 503 }))).code, "UNAVAILABLE");

  assert.equal(parseDuration("2s"), 2000);
  assert.equal(parseDuration("x"), undefined);
});
