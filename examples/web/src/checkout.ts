// Checkout: a paid plan's button asks the API for a Stripe Checkout session and sends
// the browser to the page Stripe hosts. Stripe sends the user back to this app (the
// success or cancel URL, which must be on an origin BACKPLANE_ALLOWED_REDIRECT_ORIGINS
// allows), and the subscription changes when Stripe's webhook arrives, not on return.
import type { Backplane, Schemas } from "@backplane/sdk";

type Plan = Schemas["backplane.subscription.v1.Plan"];
type Run = (action: () => Promise<void>) => Promise<void>;

/** checkoutButton is the button that starts the checkout of plan. */
export function checkoutButton(bp: Backplane, run: Run, plan: Plan): HTMLButtonElement {
  const b = document.createElement("button");
  b.textContent = `Choose ${plan.displayName ?? plan.id}`;
  b.dataset.plan = plan.id ?? "";
  b.addEventListener("click", () =>
    void run(async () => {
      b.disabled = true;
      try {
        const back = `${location.origin}/`;
        const { data } = await bp.api.POST("/v1/subscription:checkout", {
          body: { planId: plan.id ?? "", successUrl: `${back}?checkout=done`, cancelUrl: `${back}?checkout=cancelled` },
        });
        if (data?.url) location.assign(data.url);
      } finally {
        b.disabled = false;
      }
    }),
  );
  return b;
}

/** checkoutReturn says what a return from Stripe means, and tidies the address. */
export function checkoutReturn(): string | undefined {
  const outcome = new URLSearchParams(location.search).get("checkout");
  if (!outcome) return undefined;
  history.replaceState(null, "", location.pathname);
  return outcome === "done" ? "Thank you! Your plan changes as soon as Stripe confirms the payment." : "Checkout cancelled: nothing was charged.";
}
