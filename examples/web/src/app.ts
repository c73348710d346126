// The example app: every screen is a few calls of the TypeScript SDK. Sessions are kept
// in localStorage, so a reload (or the verification link, opened in this origin) finds
// the user still signed in.
import { Backplane, BackplaneError, data, type Schemas, type User, WebStorageTokenStore } from "@backplane/sdk";

import { checkoutButton, checkoutReturn } from "./checkout.js";
import { Files } from "./files.js";

type Notification = Schemas["backplane.notification.v1.Notification"];

/** localTokens keeps the session, and the device tokens that make this browser known, in localStorage. */
const localTokens = new WebStorageTokenStore(localStorage);

function el<T extends HTMLElement = HTMLElement>(selector: string): T {
  const e = document.querySelector<T>(selector);
  if (!e) throw new Error(`no ${selector} on the page`);
  return e;
}

function item(text: string, ...children: HTMLElement[]): HTMLLIElement {
  const li = document.createElement("li");
  li.append(text, ...children);
  return li;
}

function button(label: string, onClick: () => Promise<void>): HTMLButtonElement {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", () => void run(onClick));
  return b;
}

/** say shows a message, or an error as the server explained it. */
function say(message: string, error = false): void {
  const s = el("#status");
  s.textContent = message;
  s.classList.toggle("error", error);
}

/** run does an action and reports its failure. */
async function run(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (err instanceof BackplaneError) {
      const fields = err.fieldViolations.map((v) => `${v.field}: ${v.description}`).join("; ");
      say(fields ? `${err.message} (${fields})` : err.message, true);
    } else {
      say(String(err), true);
    }
  }
}

function formValues(form: HTMLFormElement): Record<string, string> {
  const out: Record<string, string> = {};
  new FormData(form).forEach((v, k) => {
    out[k] = String(v);
  });
  return out;
}

class App {
  #inbox: AbortController | undefined;
  readonly #files: Files;

  constructor(readonly bp: Backplane) {
    this.#files = new Files(bp, run);
  }

  async start(): Promise<void> {
    this.#wire();
    this.#files.wire();
    const back = checkoutReturn();
    if (back) say(back);
    await run(() => this.#plans());
    if (location.pathname === "/verify-email") {
      const token = new URLSearchParams(location.search).get("token") ?? "";
      history.replaceState(null, "", "/");
      await run(async () => {
        // The link signs in, in place of any session this browser held.
        await this.bp.verifyEmail(token);
        say("Your email address is verified, and you are signed in.");
      });
    }
    if (await this.bp.signedIn()) {
      await run(() => this.#signedIn());
    } else {
      this.#signedOut();
    }
  }

  #wire(): void {
    el<HTMLFormElement>("#sign-up").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = formValues(ev.target as HTMLFormElement);
      void run(async () => {
        const result = await this.bp.signUp({ email: v.email ?? "", password: v.password ?? "", displayName: v.displayName ?? "" });
        if (result.emailVerificationRequired) {
          // The same answer whether or not the address had an account: the email says which.
          (ev.target as HTMLFormElement).reset();
          say("Check your email: the link we sent signs you in.");
          return;
        }
        say("Welcome! We sent you a link to verify your email address.");
        await this.#signedIn();
      });
    });
    el<HTMLFormElement>("#log-in").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = formValues(ev.target as HTMLFormElement);
      void run(async () => {
        await this.bp.signIn(v.email ?? "", v.password ?? "");
        say("");
        await this.#signedIn();
      });
    });
    el("#sign-out").addEventListener("click", () =>
      void run(async () => {
        await this.bp.signOut();
        say("Signed out.");
        this.#signedOut();
      }),
    );
    el<HTMLFormElement>("#profile-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = formValues(ev.target as HTMLFormElement);
      void run(async () => {
        const r = await data(this.bp.api.PATCH("/v1/users/me", { body: { displayName: v.displayName ?? "" } }));
        this.#showUser(r.user ?? {});
        say("Profile saved.");
      });
    });
    el<HTMLFormElement>("#api-key-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const form = ev.target as HTMLFormElement;
      const scopes = new FormData(form).getAll("scopes").map(String);
      const displayName = String(new FormData(form).get("displayName") ?? "");
      void run(async () => {
        const created = await data(this.bp.api.POST("/v1/api-keys", { body: { displayName, scopes } }));
        const secret = el("#api-key-secret");
        secret.hidden = false;
        el("#api-key-secret code").textContent = created.secret ?? "";
        form.reset();
        await this.#apiKeys();
      });
    });
    el("#mark-all-read").addEventListener("click", () =>
      void run(async () => {
        await this.bp.api.POST("/v1/notifications:markAllRead", { body: {} });
        await this.#notifications();
      }),
    );
  }

  #signedOut(): void {
    this.#inbox?.abort();
    el("#signed-out").hidden = false;
    el("#signed-in").hidden = true;
    el("#sign-out").hidden = true;
    el("#who").textContent = "";
  }

  async #signedIn(): Promise<void> {
    const me = await data(this.bp.api.GET("/v1/users/me"));
    this.#showUser(me.user ?? {});
    el("#signed-out").hidden = true;
    el("#signed-in").hidden = false;
    el("#sign-out").hidden = false;
    await Promise.all([this.#sessions(), this.#apiKeys(), this.#notifications(), this.#usage(), this.#files.refresh()]);
    this.#live();
  }

  #showUser(u: User): void {
    el("#who").textContent = u.displayName ?? "";
    el("#profile-email").textContent = u.email ?? "";
    el("#profile-verified").textContent = u.emailVerified ? "verified" : "unverified";
    el<HTMLInputElement>("#profile-form input[name=displayName]").value = u.displayName ?? "";
  }

  async #sessions(): Promise<void> {
    const r = await data(this.bp.api.GET("/v1/auth/sessions"));
    const list = el("#session-list");
    list.replaceChildren(
      ...(r.sessions ?? []).map((s) => {
        const since = s.createTime ? new Date(s.createTime).toLocaleString() : "";
        const label = `${s.userAgent || "unknown client"} from ${s.ipAddress || "?"}, since ${since}`;
        if (s.current) return item(`${label} (this browser)`);
        return item(
          `${label} `,
          button("Revoke", async () => {
            await this.bp.api.DELETE("/v1/auth/sessions/{session_id}", { params: { path: { session_id: s.id ?? "" } } });
            await this.#sessions();
          }),
        );
      }),
    );
    list.dataset.count = String(r.sessions?.length ?? 0);
  }

  /** #usage shows a bar per metered quota: the period's total against the plan's limit. */
  async #usage(): Promise<void> {
    const r = await data(this.bp.api.GET("/v1/usage"));
    el("#usage-list").replaceChildren(
      ...(r.meters ?? []).map((m) => {
        const total = Number(m.total ?? 0);
        if (m.limit === undefined) return item(`${m.meter}: ${total} ${m.unit ?? ""} (unlimited)`);
        const limit = Number(m.limit);
        const bar = document.createElement("meter");
        bar.min = 0;
        bar.max = limit;
        bar.value = total;
        bar.high = limit * 0.8;
        bar.dataset.meter = m.meter ?? "";
        const percent = limit > 0 ? Math.round((100 * total) / limit) : 100;
        return item(`${m.meter}: ${total} of ${limit} ${m.unit ?? ""} (${percent}%)`, bar);
      }),
    );
  }

  async #apiKeys(): Promise<void> {
    const r = await data(this.bp.api.GET("/v1/api-keys"));
    el("#api-key-list").replaceChildren(
      ...(r.apiKeys ?? []).map((k) =>
        item(
          `${k.displayName} (${k.prefix}…; ${(k.scopes ?? []).join(", ")}) `,
          button("Delete", async () => {
            await this.bp.api.DELETE("/v1/api-keys/{api_key_id}", { params: { path: { api_key_id: k.id ?? "" } } });
            el("#api-key-secret").hidden = true;
            await this.#apiKeys();
          }),
        ),
      ),
    );
  }

  async #notifications(): Promise<void> {
    const r = await data(this.bp.api.GET("/v1/notifications", { params: { query: { pageSize: 20 } } }));
    el("#unread").textContent = String(r.unreadCount ?? 0);
    el("#notifications").replaceChildren(...(r.notifications ?? []).map((n) => this.#notification(n)));
  }

  #notification(n: Notification): HTMLLIElement {
    const li = item(`${n.title ?? ""}: ${n.body ?? ""}`);
    li.classList.toggle("unread", !n.read);
    return li;
  }

  /**
   * #live keeps the inbox current: each notification is shown as it is sent. The server
   * may end the stream at any time; then the app reconnects (waiting a little longer
   * each time it fails) and reloads the list to catch up.
   */
  #live(): void {
    this.#inbox?.abort();
    const ctl = new AbortController();
    this.#inbox = ctl;
    void (async () => {
      for (let failures = 0; !ctl.signal.aborted; ) {
        try {
          for await (const e of this.bp.notifications({ signal: ctl.signal })) {
            failures = 0;
            el("#unread").textContent = String(e.unreadCount ?? 0);
            if (e.notification) {
              el("#notifications").prepend(this.#notification(e.notification));
              if (e.notification.category === "CATEGORY_USAGE") await run(() => this.#usage());
            }
          }
        } catch (err) {
          if (ctl.signal.aborted) return;
          if (err instanceof BackplaneError && err.status === 401) {
            this.#signedOut();
            return;
          }
          failures++;
        }
        await new Promise((ok) => setTimeout(ok, Math.min(30_000, 500 * 2 ** failures)));
        if (!ctl.signal.aborted) await run(() => this.#notifications());
      }
    })();
  }

  async #plans(): Promise<void> {
    const r = await data(this.bp.api.GET("/v1/plans"));
    el("#plan-list").replaceChildren(
      ...(r.plans ?? []).map((p) => {
        const price = p.priceAmount && p.priceAmount !== "0" ? `${(Number(p.priceAmount) / 100).toFixed(2)} ${p.currency?.toUpperCase()}` : "free";
        if (price === "free") return item(`${p.displayName}: ${price}. ${p.description ?? ""}`);
        return item(`${p.displayName}: ${price}. ${p.description ?? ""} `, checkoutButton(this.bp, run, p));
      }),
    );
  }
}

const config = (await (await fetch("/config.json")).json()) as { apiUrl: string };
await new App(new Backplane({ baseUrl: config.apiUrl, tokenStore: localTokens })).start();
