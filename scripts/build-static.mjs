// Copies the front-end packages we serve from node_modules into clientpay_connect/static/vendor.
// Nothing under vendor/ is committed: `make` runs `npm ci && npm run build`.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vendor = join(root, "clientpay_connect", "static", "vendor");

const files = {
  "@picocss/pico/css/pico.min.css": "pico.min.css",
  "htmx.org/dist/htmx.min.js": "htmx.min.js",
  "tabulator-tables/dist/js/tabulator.min.js": "tabulator.min.js",
  "tabulator-tables/dist/css/tabulator_simple.min.css": "tabulator.min.css",
};

mkdirSync(vendor, { recursive: true });
for (const [source, target] of Object.entries(files)) {
  copyFileSync(join(root, "node_modules", source), join(vendor, target));
}
console.log(`copied ${Object.keys(files).length} files into ${vendor}`);
