// The smallest real use of the SDK, bundled to measure what it costs a page: sign in,
// then one typed call.
import { Backplane, data } from "@backplane/sdk";

const bp = new Backplane({ baseUrl: "https://api.example.com" });
await bp.signIn("ada@example.com", "correct horse battery staple");
const me = await data(bp.api.GET("/v1/users/me"));
document.title = me.user?.displayName ?? "";
