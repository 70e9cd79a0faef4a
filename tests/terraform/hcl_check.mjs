// Parses every .tf file under the given folder with HashiCorp's own HCL implementation and
// checks that it is canonically formatted. @cdktf/hcl2json is the Go hcl/v2 parser compiled
// to WebAssembly; @cdktf/hcl-tools exposes hclwrite.Format, the formatter `terraform fmt`
// applies. terraform fmt additionally unwraps interpolation-only strings ("${x}" -> x) and
// rewrites the legacy bare `list`/`map` types; both are reported here too.
// Usage: node hcl_check.mjs <node_modules dir> <folder>; exit 1 on any finding.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative, resolve } from "node:path";

const [modules, folder] = process.argv.slice(2);
const require = createRequire(join(resolve(modules), "noop.js"));
const { parse } = require("@cdktf/hcl2json");
const { format } = require("@cdktf/hcl-tools");

function tfFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name.startsWith(".") ? [] : tfFiles(path);
    return name.endsWith(".tf") ? [path] : [];
  });
}

function firstDifference(a, b) {
  const left = a.split("\n");
  const right = b.split("\n");
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    if (left[i] !== right[i]) {
      return `line ${i + 1}:\n    found:     ${JSON.stringify(left[i])}\n    canonical: ${JSON.stringify(right[i])}`;
    }
  }
  return "";
}

let problems = 0;
const files = tfFiles(folder).sort();
for (const file of files) {
  const name = relative(process.cwd(), file);
  const text = readFileSync(file, "utf8");
  try {
    await parse(name, text);
  } catch (error) {
    problems++;
    console.log(`PARSE ${name}: ${String(error).split("\n")[0]}`);
    continue;
  }
  const canonical = await format(text);
  if (canonical !== text) {
    problems++;
    console.log(`FORMAT ${name}: not canonical (terraform fmt would change it), first at ${firstDifference(text, canonical)}`);
  }
  text.split("\n").forEach((line, i) => {
    if (/=\s*"\$\{[^"]*\}"\s*(#.*)?$/.test(line) && (line.match(/\$\{/g) || []).length === 1) {
      problems++;
      console.log(`FORMAT ${name}:${i + 1}: interpolation-only string (terraform fmt unwraps "\${x}" to x)`);
    }
    if (/^\s*type\s*=\s*(list|map|set)\s*$/.test(line)) {
      problems++;
      console.log(`FORMAT ${name}:${i + 1}: legacy type (terraform fmt writes list(any), map(any))`);
    }
  });
}
console.log(`hcl2json + hclwrite.Format: ${files.length} file(s), ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
