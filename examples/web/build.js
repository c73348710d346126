// Bundles the app into dist/ with esbuild: dist/app.js (minified, with a source map)
// beside the page and its stylesheet.
import { copyFileSync, mkdirSync } from "node:fs";

import { build } from "esbuild";

mkdirSync("dist", { recursive: true });
await build({
  entryPoints: ["src/app.ts"],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: "es2022",
  outfile: "dist/app.js",
  logLevel: "warning",
});
for (const f of ["index.html", "style.css"]) copyFileSync(`src/${f}`, `dist/${f}`);
