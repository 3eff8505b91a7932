// Parses one AsyncAPI document with the official parser and prints what it found as JSON:
// {"valid": bool, "version": "...", "diagnostics": [{severity, code, message, path, line}]}.
// Exit status 0 when the document parsed without errors, 1 when it did not, 2 on misuse.
// Used by tests/asyncapi/test_asyncapi.py; run it by hand with `node parse.js FILE`.
"use strict";

const fs = require("node:fs");
const { Parser } = require("@asyncapi/parser");

// The parser's own numbering (from @stoplight/types DiagnosticSeverity).
const SEVERITIES = ["error", "warning", "information", "hint"];

async function main() {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: node parse.js ASYNCAPI_FILE\n");
    return 2;
  }
  const text = fs.readFileSync(file, "utf8");
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text, { source: file });
  const shown = diagnostics.map((d) => ({
    severity: SEVERITIES[d.severity] ?? String(d.severity),
    code: String(d.code),
    message: d.message,
    path: d.path.join("/"),
    // 1-based, as editors count; the parser counts from 0.
    line: d.range ? d.range.start.line + 1 : null,
  }));
  const valid = document !== undefined && !shown.some((d) => d.severity === "error");
  const report = { valid, version: document ? document.version() : null, diagnostics: shown };
  process.stdout.write(JSON.stringify(report) + "\n");
  return valid ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`parse.js: ${error && error.stack ? error.stack : error}\n`);
    process.exit(2);
  },
);
