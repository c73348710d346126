import { randomBytes } from "node:crypto";

import { Backplane } from "../dist/index.js";

/** counting wraps fetch and counts requests by path, and answers by status. */
export function counting() {
  const paths = new Map();
  const statuses = new Map();
  return {
    fetch: async (req) => {
      const path = new URL(req.url).pathname;
      paths.set(path, (paths.get(path) ?? 0) + 1);
      const res = await fetch(req);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      return res;
    },
    of: (path) => paths.get(path) ?? 0,
    status: (code) => statuses.get(code) ?? 0,
  };
}

/** email is an address no other test uses. */
export function email() {
  return `ada-${randomBytes(5).toString("hex")}@example.com`;
}

export const password = "correct horse battery staple";

/** signedUp is a new client signed in as a new account. */
export async function signedUp(dev, options = {}) {
  const bp = new Backplane({ baseUrl: dev.baseUrl, ...options });
  const address = email();
  await bp.signUp({ email: address, password, displayName: "Ada" });
  return { bp, email: address };
}
