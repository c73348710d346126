/**
 * Upload progress. fetch reports none, so a request whose progress is wanted is sent
 * one of two ways: in a browser, by XMLHttpRequest, whose upload events count the bytes
 * on the wire (fetch cannot stream a request body over HTTP/1.1 in browsers); elsewhere
 * (Node), by fetch with the body as a stream that counts what fetch reads from it.
 */

/** Hears how many of an upload's bytes have been sent; total is the body's length. */
export type ProgressListener = (sent: number, total: number) => void;

type Transport = (request: Request) => Promise<Response>;

/** The slice of a body handed to fetch at a time: the grain of the progress reports. */
const chunkBytes = 64 * 1024;

/**
 * withProgress returns a transport that sends each request and reports its body's
 * progress to onProgress, ending with (total, total) once the answer has arrived: in a
 * browser through XMLHttpRequest when useXhr is set (else through fetch, whole),
 * elsewhere through fetch with the body streamed.
 */
export function withProgress(fetch: Transport, onProgress: ProgressListener, useXhr: boolean): Transport {
  return async (request) => {
    const body = await request.blob();
    const total = body.size;
    onProgress(0, total);
    let res: Response;
    if (typeof XMLHttpRequest === "undefined") res = await viaStream(fetch, request, body, onProgress);
    else if (useXhr) res = await viaXhr(request, body, onProgress);
    // A browser whose caller chose the fetch: it cannot stream the body over HTTP/1.1,
    // so the body goes whole, and progress jumps from nothing to everything.
    else res = await fetch(new Request(request, { body }));
    onProgress(total, total);
    return res;
  };
}

function viaStream(fetch: Transport, request: Request, body: Blob, onProgress: ProgressListener): Promise<Response> {
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        if (sent >= body.size) {
          ctl.close();
          return;
        }
        const chunk = new Uint8Array(await body.slice(sent, sent + chunkBytes).arrayBuffer());
        ctl.enqueue(chunk);
        sent += chunk.byteLength;
        onProgress(sent, body.size);
      },
    },
    { highWaterMark: 0 },
  );
  // duplex is Node's (and the Fetch standard's) flag for a streamed request body; the
  // DOM's RequestInit type does not list it yet.
  const init = { body: stream, duplex: "half" } as RequestInit;
  return fetch(new Request(request, init));
}

/** Statuses whose answers have no body, which Response refuses to be given one. */
const nullBodyStatuses = new Set([101, 204, 205, 304]);

function viaXhr(request: Request, body: Blob, onProgress: ProgressListener): Promise<Response> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(request.method, request.url);
    request.headers.forEach((value, name) => xhr.setRequestHeader(name, value));
    xhr.responseType = "blob";
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    xhr.onload = () => {
      const headers = new Headers();
      for (const line of xhr.getAllResponseHeaders().trim().split(/[\r\n]+/)) {
        const i = line.indexOf(":");
        if (i > 0) headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
      }
      resolve(new Response(nullBodyStatuses.has(xhr.status) ? null : (xhr.response as Blob), { status: xhr.status, statusText: xhr.statusText, headers }));
    };
    // As fetch does: a network failure is a TypeError, an abort the signal's reason.
    xhr.onerror = () => reject(new TypeError("Failed to fetch"));
    xhr.onabort = () => reject(request.signal.reason);
    if (request.signal.aborted) return reject(request.signal.reason);
    request.signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}
