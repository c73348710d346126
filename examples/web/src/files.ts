// The files screen: pick a picture, see it at once, watch it upload, then find it in the
// list with a thumbnail and a download button. Thumbnails are the files themselves,
// shown through signed URLs (an <img> sends no Authorization header); downloads go
// through the SDK, signed, and are saved from a blob: URL of this page's own origin.
import type { Asset, Backplane } from "@backplane/sdk";

type Run = (action: () => Promise<void>) => Promise<void>;

function el<T extends HTMLElement = HTMLElement>(selector: string): T {
  const e = document.querySelector<T>(selector);
  if (!e) throw new Error(`no ${selector} on the page`);
  return e;
}

/** size says how big a file is, as a person would. */
function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export class Files {
  #preview: string | undefined;

  constructor(
    readonly bp: Backplane,
    readonly run: Run,
  ) {}

  wire(): void {
    const input = el<HTMLInputElement>("#file-input");
    input.addEventListener("change", () => {
      const file = input.files?.[0];
      if (file) void this.run(() => this.#upload(file));
    });
  }

  async #upload(file: File): Promise<void> {
    // The thumbnail is shown from the picked file itself, before a byte is sent.
    if (this.#preview) URL.revokeObjectURL(this.#preview);
    this.#preview = URL.createObjectURL(file);
    const figure = el("#file-preview");
    el<HTMLImageElement>("#file-preview img").src = this.#preview;
    el("#file-preview figcaption").textContent = `${file.name}, ${size(file.size)}`;
    figure.hidden = false;

    const bar = el<HTMLProgressElement>("#upload-progress");
    bar.hidden = false;
    bar.value = 0;
    bar.max = file.size;
    try {
      const asset = await this.bp.assets.upload(file, {
        onProgress: (sent, total) => {
          bar.max = total;
          bar.value = sent;
          bar.dataset.percent = String(total > 0 ? Math.round((100 * sent) / total) : 100);
        },
      });
      figure.dataset.assetId = asset.id ?? "";
    } finally {
      el<HTMLInputElement>("#file-input").value = "";
    }
    await this.refresh();
  }

  /** refresh lists the user's files, newest first. */
  async refresh(): Promise<void> {
    const { data } = await this.bp.api.GET("/v1/assets", { params: { query: { pageSize: 20 } } });
    const ready = (data?.assets ?? []).filter((a) => a.state === "ASSET_STATE_READY");
    const items = await Promise.all(ready.map((a) => this.#item(a)));
    const list = el("#file-list");
    list.replaceChildren(...items);
    list.dataset.count = String(items.length);
  }

  async #item(a: Asset): Promise<HTMLLIElement> {
    const li = document.createElement("li");
    li.dataset.assetId = a.id ?? "";
    if (a.contentType?.startsWith("image/")) {
      const img = document.createElement("img");
      img.className = "thumbnail";
      img.alt = a.filename ?? "";
      img.src = (await this.bp.assets.downloadUrl(a.id ?? "")).url;
      li.append(img);
    }
    const download = document.createElement("button");
    download.textContent = "Download";
    download.addEventListener("click", () =>
      void this.run(async () => {
        const blob = await this.bp.assets.download(a.id ?? "");
        const link = document.createElement("a");
        link.href = URL.createObjectURL(blob);
        link.download = a.filename ?? "download";
        link.click();
        setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      }),
    );
    li.append(` ${a.filename} (${size(Number(a.sizeBytes ?? 0))}) `, download);
    return li;
  }
}
