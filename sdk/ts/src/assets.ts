import type { Backplane, Schemas } from "./client.js";
import { BackplaneError } from "./errors.js";
import type { ProgressListener } from "./progress.js";

/** A stored file. */
export type Asset = Schemas["backplane.asset.v1.Asset"];

/** The ErrorInfo reason of a file over the deployment's size limit (HTTP 413 on the upload routes). */
export const assetTooLarge = "ASSET_TOO_LARGE";

/** How Assets.upload sends a file. */
export interface UploadOptions {
  /** The file's name; a File's own name, else "upload", unless given. */
  filename?: string;
  /** The media type; the Blob's type, else "application/octet-stream", unless given. */
  contentType?: string;
  /** Labels of the caller's choosing (keys of lower-case letters, digits, '_', '-', '.'). */
  metadata?: Record<string, string>;
  /** Hears the bytes sent so far, from (0, size) to (size, size). */
  onProgress?: ProgressListener;
  /** Aborts the upload; the call then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Assets uploads and downloads files (Backplane.assets). Errors are BackplaneErrors as
 * for every call: a file over the size limit is RESOURCE_EXHAUSTED with the ErrorInfo
 * reason "ASSET_TOO_LARGE" (`err.reason === assetTooLarge`; HTTP 413 on the upload
 * routes), a file that would pass the plan's storage quota RESOURCE_EXHAUSTED (429), a
 * media type the deployment does not take INVALID_ARGUMENT (400).
 */
export class Assets {
  readonly #bp: Backplane;
  readonly #baseUrl: string;

  constructor(bp: Backplane, baseUrl: string) {
    this.#bp = bp;
    this.#baseUrl = baseUrl;
  }

  /**
   * upload stores a File or Blob and resolves to the asset, READY. It declares the file
   * first (its name, type and size, so that a file over the size limit or the quota is
   * refused before a byte is sent), then sends the bytes with PUT, which the client
   * retries on a 503 as it does every call that may be repeated.
   *
   * Not the one-call form route (POST /v1/assets:upload), which suits a browser's plain
   * form: it can refuse a file only while the bytes are on their way, and a server that
   * answers before reading the whole body closes the connection, which fetch reports
   * as a network failure rather than the refusal.
   */
  async upload(file: Blob, options: UploadOptions = {}): Promise<Asset> {
    const filename = options.filename ?? (isFile(file) && file.name !== "" ? file.name : "upload");
    const contentType = options.contentType ?? (file.type !== "" ? file.type : "application/octet-stream");
    const { data } = await this.#bp.api.POST("/v1/assets", {
      body: { filename, contentType, sizeBytes: String(file.size), ...(options.metadata ? { metadata: options.metadata } : {}) },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const id = data?.asset?.id;
    if (!id) throw new BackplaneError({ status: 200, code: "INTERNAL", message: "the answer carried no asset" });
    return this.uploadContent(id, file, { ...options, contentType });
  }

  /**
   * uploadContent sends the bytes of an asset declared with POST /v1/assets (PENDING),
   * and resolves to the asset, READY. The PUT is retried on a 503, as every call that
   * may be repeated is.
   */
  async uploadContent(assetId: string, file: Blob, options: Pick<UploadOptions, "contentType" | "onProgress" | "signal"> = {}): Promise<Asset> {
    const { data } = await this.#bp.api.PUT("/v1/assets/{asset_id}/content", {
      params: { path: { asset_id: assetId } },
      body: file,
      // The bytes go as they are; openapi-fetch would write JSON.
      bodySerializer: (b) => b,
      headers: { "Content-Type": options.contentType ?? (file.type || "application/octet-stream") },
      ...(options.signal ? { signal: options.signal } : {}),
      // The client's own fetch, with the body's progress reported.
      ...(options.onProgress ? { fetch: (r: Request) => this.#bp.fetch(r, { onProgress: options.onProgress }) } : {}),
    });
    return data?.asset ?? {};
  }

  /** download resolves to an asset's bytes, with the asset's content type. */
  async download(assetId: string, options: { signal?: AbortSignal } = {}): Promise<Blob> {
    const { data } = await this.#bp.api.GET("/v1/assets/{asset_id}/content", {
      params: { path: { asset_id: assetId } },
      parseAs: "blob",
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return data ?? new Blob();
  }

  /**
   * downloadUrl resolves to a URL that serves the asset's bytes without credentials
   * until expires (at most 15 minutes): for `<img src>`, `<a href download>`, or a
   * share. The server signs it under its public URL, which may be the web app's origin
   * rather than the API's; the URL returned is on the API this client calls.
   */
  async downloadUrl(assetId: string): Promise<{ url: string; expires: Date }> {
    const { data } = await this.#bp.api.GET("/v1/assets/{asset_id}", { params: { path: { asset_id: assetId } } });
    if (!data?.downloadUrl) {
      throw new BackplaneError({ status: 400, code: "FAILED_PRECONDITION", message: "the asset has no bytes to download yet" });
    }
    const signed = new URL(data.downloadUrl);
    return { url: `${this.#baseUrl}${signed.pathname}${signed.search}`, expires: new Date(data.downloadExpireTime ?? 0) };
  }
}

function isFile(b: Blob): b is File {
  return typeof (b as File).name === "string";
}
