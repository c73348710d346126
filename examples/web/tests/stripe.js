// Stripe for the web app's tests: stripe-mock (pinned in tools/go.mod, v0.180.0), which
// checks every request against Stripe's API description and answers its fixtures,
// behind a small relay that answers one thing as a configured Stripe account would:
// GET /v1/prices lists an active price for each lookup key asked for (stripe-mock's
// fixture price has none, and checkout sells a plan by its price's lookup key, which
// `backplane stripe sync` creates). Nothing here reaches Stripe's network.
import { execFileSync, spawn } from "node:child_process";
import { createServer, request as httpRequest } from "node:http";

import { root } from "../../../sdk/ts/tests/dev.js";

/**
 * startStripe starts stripe-mock and the relay, and resolves to { url, requests, stop }:
 * requests lists what the API asked ("POST /v1/checkout/sessions").
 */
export async function startStripe() {
  const bin = execFileSync("go", ["tool", "-modfile=tools/go.mod", "-n", "github.com/stripe/stripe-mock"], { cwd: root, encoding: "utf8" }).trim();
  const child = spawn(bin, ["-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:", "-strict-version-check"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const mock = await new Promise((ok, fail) => {
    const seen = (b) => {
      out += b.toString();
      const m = out.match(/Listening for HTTP at address: (\S+)/);
      if (m) ok(m[1]);
    };
    child.stdout.on("data", seen);
    child.stderr.on("data", seen);
    child.once("exit", () => fail(new Error(`stripe-mock exited:\n${out}`)));
  });
  const [host, port] = [mock.slice(0, mock.lastIndexOf(":")), Number(mock.slice(mock.lastIndexOf(":") + 1))];

  const requests = [];
  const relay = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push(`${req.method} ${url.pathname}`);
    if (req.method === "GET" && url.pathname === "/v1/prices") {
      // stripe-go sends lookup_keys[0]=...&lookup_keys[1]=...
      const keys = [...url.searchParams].filter(([name]) => name.startsWith("lookup_keys")).map(([, key]) => key);
      const data = keys.map((key, i) => ({
        id: `price_${key}`,
        object: "price",
        active: true,
        currency: "usd",
        lookup_key: key,
        type: "recurring",
        unit_amount: 1000 * (i + 1),
        recurring: { interval: "month", interval_count: 1, usage_type: "licensed" },
      }));
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ object: "list", url: "/v1/prices", has_more: false, data }));
      return;
    }
    const upstream = httpRequest({ host, port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise((ok) => relay.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${relay.address().port}`,
    requests,
    async stop() {
      await new Promise((ok) => relay.close(ok));
      child.kill("SIGTERM");
    },
  };
}
