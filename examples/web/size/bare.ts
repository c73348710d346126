// The baseline for size/signin.ts: the same two calls with openapi-fetch alone, the
// token passed by hand, no refresh, retries or typed errors.
import createClient from "openapi-fetch";

import type { paths } from "@backplane/sdk";

const api = createClient<paths>({ baseUrl: "https://api.example.com" });
const { data: login } = await api.POST("/v1/auth/login", { body: { email: "ada@example.com", password: "correct horse battery staple" } });
const { data: me } = await api.GET("/v1/users/me", { headers: { Authorization: `Bearer ${login?.accessToken}` } });
document.title = me?.user?.displayName ?? "";
