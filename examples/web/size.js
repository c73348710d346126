// Prints the size of the SDK in a page: size/signin.ts (sign-in and one call), the same
// calls with openapi-fetch alone (size/bare.ts, the baseline), and the whole example
// app, each bundled and minified by esbuild, raw and gzipped (level 9).
import { gzipSync } from "node:zlib";

import { build } from "esbuild";

for (const entry of ["size/signin.ts", "size/bare.ts", "src/app.ts"]) {
  const out = await build({ entryPoints: [entry], bundle: true, minify: true, format: "esm", target: "es2022", write: false });
  const js = out.outputFiles[0].contents;
  console.log(`${entry}: ${js.length} B minified, ${gzipSync(js, { level: 9 }).length} B gzipped`);
}
