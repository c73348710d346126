// Writes the SDK's types (src/gen/openapi.ts) from the OpenAPI document, as the
// openapi-typescript CLI would, with two renderings the CLI lacks:
//   - a binary string (format binary: a file part of a form, a raw body) is a Blob, which
//     is what fetch sends and answers, not a string;
//   - an object's patternProperties whose patterns are prefixes ("^metadata\\.", the
//     upload form's labels) are keyed by a template literal (`metadata.${string}`), not
//     by every string, which would clash with the object's other properties (a Blob).
// `npm run generate` and tools/check-generated.sh both run it.
//
// Usage: node scripts/generate-types.mjs <document.json> <output.ts>
import fs from "node:fs";
import { pathToFileURL } from "node:url";

import openapiTS, { astToString, COMMENT_HEADER, transformSchemaObject } from "openapi-typescript";
import ts from "typescript";

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: generate-types.mjs <document.json> <output.ts>");
  process.exit(2);
}

const f = ts.factory;
const blob = f.createTypeReferenceNode("Blob");

/** prefixPattern is the literal prefix a pattern such as "^metadata\\." matches, or undefined. */
function prefixPattern(pattern) {
  const m = /^\^((?:[A-Za-z0-9_-]|\\\.)*)$/.exec(pattern);
  return m ? m[1].replaceAll("\\.", ".") : undefined;
}

/** prefixed is an object type whose keys start with prefix, each of type value. */
function prefixed(prefix, value) {
  const key = f.createTemplateLiteralType(f.createTemplateHead(prefix), [
    f.createTemplateLiteralTypeSpan(f.createKeywordTypeNode(ts.SyntaxKind.StringKeyword), f.createTemplateTail("")),
  ]);
  return f.createTypeLiteralNode([f.createIndexSignature(undefined, [f.createParameterDeclaration(undefined, undefined, "key", undefined, key)], value)]);
}

const ast = await openapiTS(pathToFileURL(input), {
  silent: true,
  transform(schema, options) {
    if (schema.format === "binary") return blob;
    if (schema.patternProperties) {
      const { patternProperties, ...rest } = schema;
      const parts = [transformSchemaObject(rest, options)];
      for (const [pattern, value] of Object.entries(patternProperties)) {
        const prefix = prefixPattern(pattern);
        if (prefix === undefined) throw new Error(`patternProperties ${pattern}: only a literal prefix ("^name\\.") is rendered`);
        parts.push(prefixed(prefix, transformSchemaObject(value, options)));
      }
      return f.createIntersectionTypeNode(parts);
    }
    return undefined;
  },
});
fs.writeFileSync(output, COMMENT_HEADER + astToString(ast));
