// Serves the built app (dist/) on its own origin, as a team would from a CDN: every path
// that is not a file gets index.html, so that emailed links (/verify-email?token=...)
// open the app. /config.json tells the app where the API is; BACKPLANE_API_URL sets it.
// That origin must be in the API's BACKPLANE_CORS_ALLOWED_ORIGINS.
//
//   node serve.js [port]      (port 3000 unless given; BACKPLANE_API_URL=http://localhost:8080)
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};

/** serve listens on host:port and resolves to the server once it listens. */
export function serve({ port, host = "127.0.0.1", apiUrl, dir = fileURLToPath(new URL("dist/", import.meta.url)) }) {
  const config = JSON.stringify({ apiUrl });
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/config.json") {
      res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-store" });
      res.end(config);
      return;
    }
    const file = normalize(join(dir, path));
    const known = file.startsWith(dir) && extname(file) in types;
    try {
      const body = await readFile(known ? file : join(dir, "index.html"));
      res.writeHead(200, { "Content-Type": types[known ? extname(file) : ".html"] });
      res.end(body);
    } catch {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("not found\n");
    }
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => ok(server));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? 3000);
  const apiUrl = process.env.BACKPLANE_API_URL ?? "http://localhost:8080";
  await serve({ port, host: "localhost", apiUrl });
  console.log(`the app is on http://localhost:${port}/ (API ${apiUrl}; its BACKPLANE_CORS_ALLOWED_ORIGINS must list http://localhost:${port})`);
}
