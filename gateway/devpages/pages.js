// Completes the flows that emailed links start, by calling the REST API as a product's
// own page would. Served by `backplane dev` only, as a file (not inline) so that the
// page's Content-Security-Policy can forbid inline script.
(function () {
  const token = new URLSearchParams(location.search).get("token") || "";
  const flow = location.pathname.replace(/^\/+|\/+$/g, "");
  const section = document.getElementById(flow);
  const result = document.getElementById("result");
  const show = (text, ok) => { result.textContent = text; result.className = ok ? "ok" : "err"; };
  if (!section) return;
  section.hidden = false;
  if (!token) { show("This link has no token: open the link from the email as it is.", false); return; }

  const call = async (path, body) => {
    const resp = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const json = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(json.message || resp.status + " " + resp.statusText);
    return json;
  };
  const form = section.querySelector("form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      if (flow === "verify-email") {
        // The link signs in: a product's page would keep the tokens as its session. Here
        // they are shown, for curl (Authorization: Bearer <accessToken>).
        const out = await call("/v1/auth/email:verify", { token });
        const who = (out.user && out.user.email) || "your address";
        show(out.accessToken
          ? "Verified, and signed in as " + who + ". Access token (for curl): " + out.accessToken
          : "Verified: " + who + ". The account is disabled, so it is not signed in.", true);
      } else {
        await call("/v1/auth/password:reset", { token, newPassword: document.getElementById("password").value });
        show("Your password is changed. Sign in with it.", true);
      }
    } catch (e) {
      show(String(e.message || e), false);
      button.disabled = false;
    }
  });
})();
