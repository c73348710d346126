// A real `backplane dev` for the tests: built from this checkout with go build, on free
// ports, with a database of its own on the local PostgreSQL (dropped afterwards), an
// embedded Redis stand-in and a mailbox in a temporary directory.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

const postgres = process.env.BACKPLANE_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432";

/**
 * build compiles bin/backplane from this checkout (Go's cache makes a repeat quick),
 * unless BACKPLANE_BIN names a binary already built (make does, so that a cold compile
 * does not count against a test's time limit).
 */
export function build() {
  if (process.env.BACKPLANE_BIN) return resolve(process.env.BACKPLANE_BIN);
  const bin = join(root, "bin", "backplane");
  execFileSync("go", ["build", "-o", bin, "./cmd/backplane"], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  return bin;
}

/** freePort asks the kernel for a port nobody listens on. */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

function psql(sql) {
  execFileSync("psql", [`${postgres}/postgres`, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], { stdio: ["ignore", "ignore", "inherit"] });
}

/**
 * startDev starts backplane dev and resolves once it says it is up. env adds settings
 * (BACKPLANE_CORS_ALLOWED_ORIGINS, rate limits...). stop() ends it and drops its data.
 */
export async function startDev(env = {}) {
  const bin = build();
  const [http, grpc, admin] = [await freePort(), await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), "backplane-sdkts-"));
  const db = `sdkts_${randomBytes(6).toString("hex")}`;
  psql(`CREATE DATABASE ${db}`);
  const child = spawn(bin, ["dev"], {
    cwd: root,
    env: {
      ...process.env,
      BACKPLANE_DATABASE_URL: `${postgres}/${db}?sslmode=disable`,
      BACKPLANE_HTTP_ADDR: `127.0.0.1:${http}`,
      BACKPLANE_GRPC_ADDR: `127.0.0.1:${grpc}`,
      BACKPLANE_ADMIN_ADDR: `127.0.0.1:${admin}`,
      BACKPLANE_DATA_DIR: dataDir,
      BACKPLANE_REDIS_URL: "",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const collect = (b) => {
    out += b.toString();
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const exited = new Promise((ok) => child.once("exit", (code, signal) => ok({ code, signal })));

  const up = await Promise.race([
    (async () => {
      while (!out.includes("backplane dev is up")) await new Promise((ok) => setTimeout(ok, 50));
      return true;
    })(),
    exited.then(() => false),
  ]);
  const dev = {
    baseUrl: `http://127.0.0.1:${http}`,
    dataDir,
    output: () => out,
    /** mail returns the dev mailbox's text files whose content matches re, oldest first. */
    mail(re) {
      let names = [];
      try {
        names = readdirSync(join(dataDir, "mailbox")).filter((n) => n.endsWith(".txt")).sort();
      } catch {
        return [];
      }
      return names.map((n) => readFileSync(join(dataDir, "mailbox", n), "utf8")).filter((t) => re.test(t));
    },
    /** link waits for an email containing a link to path and returns the link's last occurrence. */
    async link(path) {
      const re = new RegExp(`https?://\\S+${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\?token=[A-Za-z0-9_-]+`, "g");
      for (;;) {
        const found = dev.mail(re).flatMap((t) => t.match(re) ?? []);
        if (found.length > 0) return found[found.length - 1];
        await new Promise((ok) => setTimeout(ok, 50));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
      psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    },
  };
  if (!up) {
    await dev.stop();
    throw new Error(`backplane dev exited before it was up:\n${out}`);
  }
  return dev;
}
