// The example app end to end: built, served on its own origin (which the API's CORS
// allows), and driven in headless Chromium (Debian's, through playwright-core) against a
// real backplane dev. Each step names itself; a failing step saves a screenshot of the
// page in test-results/ (ARTIFACTS_DIR overrides), which CI keeps.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Backplane, data } from "@backplane/sdk";
import { chromium } from "playwright-core";

import { freePort, startDev } from "../../../sdk/ts/tests/dev.js";
import { serve } from "../serve.js";

const here = fileURLToPath(new URL("..", import.meta.url));
const artifacts = process.env.ARTIFACTS_DIR ?? join(here, "test-results");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

let dev, site, browser, page, origin;
before(async () => {
  // test-results/ keeps only this run's failures (a directory named by ARTIFACTS_DIR is
  // the caller's, and left alone).
  if (!process.env.ARTIFACTS_DIR) rmSync(artifacts, { recursive: true, force: true });
  execFileSync("npm", ["run", "--silent", "build"], { cwd: here, stdio: "inherit" });
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  dev = await startDev({
    BACKPLANE_CORS_ALLOWED_ORIGINS: origin,
    // Emailed links open the app.
    BACKPLANE_PUBLIC_URL: origin,
  });
  site = await serve({ port, apiUrl: dev.baseUrl });
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
  page = await browser.newPage();
});
after(async () => {
  await browser?.close();
  await new Promise((ok) => (site ? site.close(ok) : ok()));
  await dev?.stop();
});

/** step runs one part of the journey; on failure it saves a screenshot named after it. */
async function step(t, name, fn) {
  await t.test(name, async () => {
    try {
      await fn();
    } catch (err) {
      mkdirSync(artifacts, { recursive: true });
      const file = join(artifacts, `${name.replace(/[^a-z0-9]+/gi, "-")}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
      err.message += `\n(screenshot: ${file})`;
      throw err;
    }
  });
}

const text = (selector) => page.locator(selector).first();

test("a new user's journey through the app", async (t) => {
  const email = `grace-${randomBytes(4).toString("hex")}@example.com`;
  const password = "correct horse battery staple";

  await step(t, "plans are listed before sign-in", async () => {
    await page.goto(`${origin}/`);
    await text("#plan-list li").waitFor();
    assert.match(await page.locator("#plan-list").innerText(), /Free/);
  });

  await step(t, "sign up", async () => {
    await page.fill("#sign-up input[name=displayName]", "Grace");
    await page.fill("#sign-up input[name=email]", email);
    await page.fill("#sign-up input[name=password]", password);
    await page.click("#sign-up button");
    await page.locator("#status", { hasText: "Check your email" }).waitFor();
    assert.equal(await page.locator("#log-in").isVisible(), true, "not signed in yet");
  });

  await step(t, "the verification link from the dev mailbox verifies the address and signs in", async () => {
    const link = await dev.link("/verify-email");
    assert.ok(link.startsWith(`${origin}/verify-email?token=`), link);
    await page.goto(link);
    await page.locator("#status", { hasText: "verified" }).waitFor();
    await page.locator("#profile-email", { hasText: email }).waitFor();
    await page.locator("#profile-verified", { hasText: /^verified$/ }).waitFor();
  });

  await step(t, "sign out, then log in with the password", async () => {
    await page.click("#sign-out");
    await page.locator("#log-in").waitFor();
    await page.fill("#log-in input[name=email]", email);
    await page.fill("#log-in input[name=password]", password);
    await page.click("#log-in button");
    await page.locator("#profile-verified", { hasText: /^verified$/ }).waitFor();
  });

  await step(t, "profile: the name is changed", async () => {
    await page.fill("#profile-form input[name=displayName]", "Grace H.");
    await page.click("#profile-form button");
    await page.locator("#who", { hasText: "Grace H." }).waitFor();
  });

  // A second session, signed in elsewhere: the SDK in Node, as another device would.
  const other = new Backplane({ baseUrl: dev.baseUrl });
  await other.signIn(email, password);

  await step(t, "sessions: another device's session is revoked", async () => {
    await page.reload();
    await page.locator("#session-list[data-count='2']").waitFor();
    await page.click("#session-list button:has-text('Revoke')");
    await page.locator("#session-list[data-count='1']").waitFor();
    assert.match(await page.locator("#session-list").innerText(), /this browser/);
    await assert.rejects(other.api.GET("/v1/users/me"), (err) => err.status === 401, "the revoked session is over");
  });

  await step(t, "API keys: a key is created, works, and is deleted", async () => {
    await page.fill("#api-key-form input[name=displayName]", "deploy bot");
    await page.click("#api-key-form button");
    await page.locator("#api-key-secret").waitFor({ state: "visible" });
    const secret = await text("#api-key-secret code").innerText();
    assert.match(secret, /^bpk_/);
    await page.locator("#api-key-list li", { hasText: "deploy bot" }).waitFor();
    const keyed = new Backplane({ baseUrl: dev.baseUrl, apiKey: secret });
    assert.equal((await data(keyed.api.GET("/v1/users/me"))).user?.email, email);

    await page.click("#api-key-list button:has-text('Delete')");
    await page.locator("#api-key-list li").waitFor({ state: "detached" });
    await assert.rejects(keyed.api.GET("/v1/users/me"), (err) => err.status === 401);
  });

  // The edge counts the app's own calls on api_calls, so the bars start near, not at, zero.
  await step(t, "usage: a bar per metered quota, empty at first", async () => {
    await page.locator("#usage-list li", { hasText: /api_calls: \d+ of 100000 calls \(0%\)/ }).waitFor();
  });

  await step(t, "the inbox shows a new notification live, and the usage it is about", async () => {
    assert.equal(await page.locator("#unread").innerText(), "0");
    // Usage past 80% of the free plan raises an in-app alert, sent while the page is open.
    const device = new Backplane({ baseUrl: dev.baseUrl });
    await device.signIn(email, password);
    await data(device.api.POST("/v1/usage:record", { body: { meter: "api_calls", quantity: "85000", idempotencyKey: "web-e2e" } }));
    await page.locator("#notifications li", { hasText: "80%" }).waitFor();
    assert.equal(await page.locator("#unread").innerText(), "1");
    // The alert refreshed the usage bars.
    await page.locator("#usage-list li", { hasText: /api_calls: 850\d\d of 100000 calls \(85%\)/ }).waitFor();
    const value = Number(await page.locator("meter[data-meter=api_calls]").getAttribute("value"));
    assert.ok(value >= 85000 && value < 85100, `meter value ${value}`);

    await page.click("#mark-all-read");
    await page.locator("#unread", { hasText: /^0$/ }).waitFor();
  });
});
