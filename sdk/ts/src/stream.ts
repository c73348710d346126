/**
 * ndjson yields the newline-delimited JSON values of a response body as they arrive. The
 * body is cancelled when the consumer stops early (a break out of for await), so the
 * connection is closed rather than left to drain.
 */
export async function* ndjson(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let done = false;
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffered += decoder.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line !== "") yield JSON.parse(line);
      }
    }
    buffered += decoder.decode();
    if (buffered.trim() !== "") yield JSON.parse(buffered);
    done = true;
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
