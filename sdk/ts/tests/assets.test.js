// Files through the SDK against a real backplane dev: upload with progress, download,
// signed URLs, and the typed refusals.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { assetTooLarge, BackplaneError, data } from "../dist/index.js";
import { startDev } from "./dev.js";
import { counting, signedUp } from "./helpers.js";

// The free plan's max_upload_bytes (internal/plans/default.yaml), which replaces
// BACKPLANE_ASSET_MAX_BYTES for a user without a subscription.
const maxBytes = 25 << 20;

let dev;
before(async () => {
  dev = await startDev({
    BACKPLANE_RATE_LIMIT_ANONYMOUS: "6000/m",
    BACKPLANE_RATE_LIMIT_AUTHENTICATED: "6000/m",
    // Signed URLs are made under the public URL, here another origin than the API's (the
    // web app's, say): the SDK's URL must still reach the API.
    BACKPLANE_PUBLIC_URL: "http://app.invalid:3000",
  });
});
after(async () => {
  await dev?.stop();
});

/** form writes a multipart form from an upload's fields, the file part last, as the server reads it. */
function form(body) {
  const f = new FormData();
  for (const [k, v] of Object.entries(body)) if (k !== "file") f.append(k, String(v));
  f.append("file", body.file, body.filename ?? "upload");
  return f;
}

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

describe("uploads", () => {
  test("a Blob is declared, sent with progress, and downloaded as it was", async () => {
    const calls = counting();
    const { bp } = await signedUp(dev, { fetch: calls.fetch });
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const progress = [];
    const asset = await bp.assets.upload(new Blob([bytes], { type: "image/png" }), {
      filename: "avatar.png",
      metadata: { purpose: "avatar" },
      onProgress: (sent, total) => progress.push([sent, total]),
    });
    assert.equal(asset.state, "ASSET_STATE_READY");
    assert.equal(asset.filename, "avatar.png");
    assert.equal(asset.contentType, "image/png");
    assert.equal(asset.sizeBytes, String(bytes.length));
    assert.equal(asset.sha256, sha256(bytes));
    assert.deepEqual(asset.metadata, { purpose: "avatar" });
    assert.equal(calls.of("/v1/assets"), 1, "declared once");
    assert.equal(calls.of(`/v1/assets/${asset.id}/content`), 1, "sent once");

    // Progress climbs from nothing to everything, in more than one step.
    assert.deepEqual(progress[0], [0, bytes.length]);
    assert.deepEqual(progress.at(-1), [bytes.length, bytes.length]);
    assert.ok(progress.length > 10, `${progress.length} reports`);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] >= progress[i - 1][0], "progress never goes back");

    const back = await bp.assets.download(asset.id);
    assert.equal(back.type, "image/png");
    assert.equal(sha256(Buffer.from(await back.arrayBuffer())), sha256(bytes));

    const listed = await data(bp.api.GET("/v1/assets"));
    assert.deepEqual(
      listed.assets?.map((a) => a.id),
      [asset.id],
    );
  });

  test("a File keeps its name and type; its signed URL works without credentials on the API's origin", async () => {
    const { bp } = await signedUp(dev);
    const text = "hello, world\n";
    const asset = await bp.assets.upload(new File([text], "notes.txt", { type: "text/plain" }));
    assert.equal(asset.filename, "notes.txt");
    assert.equal(asset.contentType, "text/plain");

    const { url, expires } = await bp.assets.downloadUrl(asset.id);
    assert.ok(url.startsWith(`${dev.baseUrl}/v1/assets/${asset.id}/content:signed?`), url);
    assert.ok(expires.getTime() > Date.now() && expires.getTime() <= Date.now() + 15 * 60_000, String(expires));
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), text);
    const forged = await fetch(url.replace(/signature=[^&]+/, "signature=forged"));
    assert.equal(forged.status, 403);
  });

  test("a file over the size limit is refused before a byte is sent, typed", async () => {
    const calls = counting();
    const { bp } = await signedUp(dev, { fetch: calls.fetch });
    const big = new Blob([new Uint8Array(maxBytes + 1)], { type: "application/octet-stream" });
    await assert.rejects(bp.assets.upload(big), (err) => {
      assert.ok(err instanceof BackplaneError);
      assert.equal(err.code, "RESOURCE_EXHAUSTED");
      assert.equal(err.reason, assetTooLarge);
      assert.equal(err.retryAfterMs, undefined, "nothing to wait for");
      return true;
    });
    assert.equal(calls.of("/v1/assets"), 1, "not retried");
    const listed = await data(bp.api.GET("/v1/assets"));
    assert.equal(listed.assets?.length ?? 0, 0);
  });

  test("bytes that do not match the declaration are INVALID_ARGUMENT, and leave the asset PENDING", async () => {
    const { bp } = await signedUp(dev);
    const declared = await data(bp.api.POST("/v1/assets", { body: { filename: "a.bin", contentType: "application/octet-stream", sizeBytes: "10" } }));
    const id = declared.asset.id;
    for (const n of [9, 11]) {
      await assert.rejects(bp.assets.uploadContent(id, new Blob([new Uint8Array(n)])), (err) => err instanceof BackplaneError && err.status === 400 && err.code === "INVALID_ARGUMENT", `${n} bytes`);
    }
    const got = await data(bp.api.GET("/v1/assets/{asset_id}", { params: { path: { asset_id: id } } }));
    assert.equal(got.asset?.state, "ASSET_STATE_PENDING");
    await assert.rejects(bp.assets.downloadUrl(id), (err) => err instanceof BackplaneError && err.code === "FAILED_PRECONDITION");
  });

  test("the typed form route takes the fields the document names, with the file part last", async () => {
    const { bp } = await signedUp(dev);
    const bytes = Buffer.from("month,calls\n2026-11,1234\n".repeat(3000));
    const { data: answer } = await bp.api.POST("/v1/assets:upload", {
      body: { filename: "report.csv", content_type: "text/csv", size_bytes: bytes.length, sha256: sha256(bytes), "metadata.kind": "report", file: new Blob([bytes]) },
      bodySerializer: form,
    });
    const asset = answer.asset;
    assert.equal(asset.state, "ASSET_STATE_READY");
    assert.equal(asset.filename, "report.csv");
    assert.equal(asset.contentType, "text/csv");
    assert.equal(asset.sizeBytes, String(bytes.length));
    assert.equal(asset.sha256, sha256(bytes));
    assert.deepEqual(asset.metadata, { kind: "report" });
    const back = await bp.assets.download(asset.id);
    assert.equal(sha256(Buffer.from(await back.arrayBuffer())), sha256(bytes));
  });

  test("a form upload over the size limit is 413, typed, through the typed form route", async () => {
    const { bp } = await signedUp(dev);
    const file = new Blob([new Uint8Array(maxBytes + 1)], { type: "application/octet-stream" });
    // No size_bytes: the server counts the bytes as they come, and refuses at the limit.
    await assert.rejects(bp.api.POST("/v1/assets:upload", { body: { file }, bodySerializer: form }), (err) => {
      assert.ok(err instanceof BackplaneError);
      assert.equal(err.status, 413);
      assert.equal(err.code, "RESOURCE_EXHAUSTED");
      assert.equal(err.reason, assetTooLarge);
      return true;
    });
    const listed = await data(bp.api.GET("/v1/assets"));
    assert.equal(listed.assets?.length ?? 0, 0, "nothing half-stored");
  });

  test("a media type the deployment does not take is INVALID_ARGUMENT", async () => {
    const { bp } = await signedUp(dev);
    await assert.rejects(bp.assets.upload(new Blob(["<svg/>"], { type: "image/svg+xml" })), (err) => err instanceof BackplaneError && err.status === 400 && err.code === "INVALID_ARGUMENT");
  });

  test("another user's asset is NOT_FOUND", async () => {
    const { bp: owner } = await signedUp(dev);
    const asset = await owner.assets.upload(new Blob(["mine"], { type: "text/plain" }));
    const { bp: other } = await signedUp(dev);
    await assert.rejects(other.assets.download(asset.id), (err) => err instanceof BackplaneError && err.status === 404);
  });

  test("an aborted upload rejects with the signal's reason", async () => {
    const { bp } = await signedUp(dev);
    const ctl = new AbortController();
    const bytes = new Blob([new Uint8Array(2 << 20)], { type: "application/octet-stream" });
    const upload = bp.assets.upload(bytes, {
      signal: ctl.signal,
      onProgress: (sent) => {
        if (sent > 0) ctl.abort(new Error("the user cancelled"));
      },
    });
    await assert.rejects(upload, (err) => err.message === "the user cancelled" || err.name === "AbortError");
  });
});
