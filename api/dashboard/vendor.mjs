// Copies the ES modules of the page's libraries (package.json, installed by `npm ci`)
// into static/vendor, which the server serves and the Python package ships. No bundler,
// no transpiler: the files are the packages' own, byte for byte; index.html's import map
// names them for the bare imports they make of each other ("preact", "htm", ...).
// Swagger UI's files are the OpenAPI viewer's at /schema (api/openapi.py), so that it
// loads nothing from a CDN.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const vendor = join(here, "static", "vendor");

// [from node_modules, to static/vendor]
const files = [
  ["preact/dist/preact.module.js", "preact.module.js"],
  ["preact/hooks/dist/hooks.module.js", "preact-hooks.module.js"],
  ["preact/LICENSE", "preact.LICENSE"],
  ["htm/dist/htm.module.js", "htm.module.js"],
  ["htm/preact/index.module.js", "htm-preact.module.js"],
  ["htm/LICENSE", "htm.LICENSE"],
  ["uplot/dist/uPlot.esm.js", "uPlot.esm.js"],
  ["uplot/dist/uPlot.min.css", "uPlot.min.css"],
  ["uplot/LICENSE", "uplot.LICENSE"],
  ["eventsource/dist/index.js", "eventsource.js"],
  ["eventsource/LICENSE", "eventsource.LICENSE"],
  ["eventsource-parser/dist/index.js", "eventsource-parser.js"],
  ["eventsource-parser/LICENSE", "eventsource-parser.LICENSE"],
  // the bundles' own license files keep the names their first comment points to
  ["swagger-ui-dist/swagger-ui-bundle.js", "swagger-ui-bundle.js"],
  ["swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt", "swagger-ui-bundle.js.LICENSE.txt"],
  ["swagger-ui-dist/swagger-ui-standalone-preset.js", "swagger-ui-standalone-preset.js"],
  [
    "swagger-ui-dist/swagger-ui-standalone-preset.js.LICENSE.txt",
    "swagger-ui-standalone-preset.js.LICENSE.txt",
  ],
  ["swagger-ui-dist/swagger-ui.css", "swagger-ui.css"],
  ["swagger-ui-dist/LICENSE", "swagger-ui.LICENSE"],
  ["swagger-ui-dist/NOTICE", "swagger-ui.NOTICE"],
];

rmSync(vendor, { recursive: true, force: true });
mkdirSync(vendor, { recursive: true });
for (const [from, to] of files) {
  copyFileSync(join(modules, from), join(vendor, to));
}
console.log(`vendored ${files.length} files into ${vendor}`);
