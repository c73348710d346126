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

/** verificationToken waits for the verification email sent to address and returns its token. */
export async function verificationToken(dev, address) {
  const re = /\/verify-email\?token=([A-Za-z0-9_-]+)/;
  for (;;) {
    const mail = dev.mail(re).find((t) => t.includes(address));
    if (mail) return mail.match(re)[1];
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

/**
 * signedUp is a new client signed in as a new account: by the link in the verification
 * email, as the server signs no one in at sign-up by default.
 */
export async function signedUp(dev, options = {}) {
  const bp = new Backplane({ baseUrl: dev.baseUrl, ...options });
  const address = email();
  const result = await bp.signUp({ email: address, password, displayName: "Ada" });
  if (result.emailVerificationRequired) {
    await bp.verifyEmail(await verificationToken(dev, address));
  }
  return { bp, email: address };
}
