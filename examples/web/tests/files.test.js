// The app's files and checkout screens end to end, in headless Chromium against a real
// backplane dev whose Stripe is stripe-mock (tests/stripe.js): a picture is uploaded with
// progress and a thumbnail, listed and downloaded; a paid plan's button leads to the
// checkout page the API returned; and the browser is a known device at its next sign-in.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

import { Backplane, data } from "@backplane/sdk";
import { chromium } from "playwright-core";

import { freePort, startDev } from "../../../sdk/ts/tests/dev.js";
import { password, signedUp } from "../../../sdk/ts/tests/helpers.js";
import { serve } from "../serve.js";
import { startStripe } from "./stripe.js";

const here = fileURLToPath(new URL("..", import.meta.url));
const artifacts = process.env.ARTIFACTS_DIR ?? join(here, "test-results");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

let dev, stripe, site, browser, page, origin, scratch;
before(async () => {
  execFileSync("npm", ["run", "--silent", "build"], { cwd: here, stdio: "inherit" });
  scratch = mkdtempSync(join(tmpdir(), "backplane-web-"));
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  stripe = await startStripe();
  dev = await startDev({
    BACKPLANE_CORS_ALLOWED_ORIGINS: origin,
    // Emailed links, signed download URLs and checkout's way back are on the app's origin.
    BACKPLANE_PUBLIC_URL: origin,
    BACKPLANE_STRIPE_SECRET_KEY: "sk_test_123",
    BACKPLANE_STRIPE_API_BASE: stripe.url,
  });
  site = await serve({ port, apiUrl: dev.baseUrl });
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
  page = await browser.newPage({ acceptDownloads: true });
});
after(async () => {
  await browser?.close();
  await new Promise((ok) => (site ? site.close(ok) : ok()));
  await dev?.stop();
  await stripe?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
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

/** png is a width × height picture of random pixels, as a PNG file's bytes. */
function png(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, body) => {
    const out = Buffer.alloc(12 + body.length);
    out.writeUInt32BE(body.length, 0);
    out.write(type, 4, "ascii");
    body.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + body.length)), 8 + body.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) rows.push(Buffer.from([0]), randomBytes(width * 3));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header), chunk("IDAT", deflateSync(Buffer.concat(rows))), chunk("IEND", Buffer.alloc(0))]);
}

const sha256 = (b) => createHash("sha256").update(b).digest("hex");

test("files, checkout and a known browser", async (t) => {
  const { email } = await signedUp(dev);

  await step(t, "log in: the browser keeps the device token it is given", async () => {
    await page.goto(`${origin}/`);
    await page.fill("#log-in input[name=email]", email);
    await page.fill("#log-in input[name=password]", password);
    await page.click("#log-in button");
    await page.locator("#profile-email", { hasText: email }).waitFor();
    const device = await page.evaluate((e) => localStorage.getItem(`backplane.device:${e}`), email.toLowerCase());
    assert.match(device ?? "", /^bpd_/);
  });

  await step(t, "log in again after signing out: the browser says it is that device", async () => {
    const device = await page.evaluate((e) => localStorage.getItem(`backplane.device:${e}`), email.toLowerCase());
    await page.click("#sign-out");
    await page.locator("#log-in").waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem("backplane.tokens")), null, "the session is forgotten");
    await page.fill("#log-in input[name=email]", email);
    await page.fill("#log-in input[name=password]", password);
    await page.click("#log-in button");
    await page.locator("#profile-email", { hasText: email }).waitFor();
    // The server hands a device back the token it presented when it is the account's,
    // and a new one otherwise: the same token means the browser sent it.
    assert.equal(await page.evaluate((e) => localStorage.getItem(`backplane.device:${e}`), email.toLowerCase()), device);
  });

  const picture = png(160, 120);
  const file = join(scratch, "avatar.png");
  writeFileSync(file, picture);

  await step(t, "upload a picture: its thumbnail shows at once, and the progress bar fills", async () => {
    await page.setInputFiles("#file-input", file);
    await page.locator("#file-preview img[src^='blob:']").waitFor();
    await page.waitForFunction(() => document.querySelector("#file-preview img")?.naturalWidth === 160);
    await page.locator("#file-list[data-count='1']").waitFor();
    const bar = page.locator("#upload-progress");
    assert.equal(await bar.getAttribute("data-percent"), "100");
    assert.equal(await bar.evaluate((b) => [b.value, b.max].join("/")), `${picture.length}/${picture.length}`);
    assert.equal(await page.locator("#file-preview").getAttribute("data-asset-id"), await page.locator("#file-list li").first().getAttribute("data-asset-id"));

    // Stored as it was sent.
    const bp = new Backplane({ baseUrl: dev.baseUrl });
    await bp.signIn(email, password);
    const listed = await data(bp.api.GET("/v1/assets"));
    assert.equal(listed.assets?.length, 1);
    assert.equal(listed.assets[0].filename, "avatar.png");
    assert.equal(listed.assets[0].contentType, "image/png");
    assert.equal(listed.assets[0].sha256, sha256(picture));
  });

  await step(t, "the list's thumbnail is the stored picture, through its signed URL", async () => {
    const thumb = page.locator("#file-list img.thumbnail");
    assert.match((await thumb.getAttribute("src")) ?? "", new RegExp(`^${dev.baseUrl}/v1/assets/[0-9a-f-]+/content:signed\\?`));
    await page.waitForFunction(() => document.querySelector("#file-list img.thumbnail")?.naturalWidth === 160);
  });

  await step(t, "download the picture: the same bytes, under its name", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#file-list button:has-text('Download')")]);
    assert.equal(download.suggestedFilename(), "avatar.png");
    assert.equal(sha256(readFileSync(await download.path())), sha256(picture));
  });

  await step(t, "a paid plan's button leads to the checkout page the API returned", async () => {
    // Stripe's page itself is out of reach: the browser is shown a stand-in.
    await page.route("https://checkout.stripe.com/**", (route) => route.fulfill({ contentType: "text/html", body: "<h1>Stripe Checkout</h1>" }));
    // The API's answer, read as it passes (the page navigates away from it at once).
    let sent, url;
    await page.route("**/v1/subscription:checkout", async (route) => {
      const answer = await route.fetch();
      if (route.request().method() === "POST") {
        assert.equal(answer.status(), 200);
        sent = route.request().postDataJSON();
        ({ url } = await answer.json());
      }
      await route.fulfill({ response: answer });
    });
    await page.click("#plan-list button[data-plan='pro_monthly']");
    await page.waitForURL(/^https:\/\/checkout\.stripe\.com\//);
    assert.equal(sent?.planId, "pro_monthly");
    assert.equal(sent?.successUrl, `${origin}/?checkout=done`);
    assert.match(url ?? "", /^https:\/\/checkout\.stripe\.com\//);
    await page.waitForURL(url);
    assert.equal(page.url(), url);
    assert.equal(stripe.requests.filter((r) => r === "POST /v1/checkout/sessions").length, 1);
  });

  await step(t, "back from checkout, the app says what happens next", async () => {
    await page.goto(`${origin}/?checkout=done`);
    await page.locator("#status", { hasText: "as soon as Stripe confirms" }).waitFor();
    assert.equal(new URL(page.url()).search, "", "the address is tidied");
  });
});
