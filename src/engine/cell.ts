/**
 * `execute` cells: JS or TS with top-level await, whose top-level declarations persist in the
 * namespace (re-running a cell never fails with "already declared"). Like Node's REPL, top-level
 * declarations become assignments to globals inside an async wrapper; the edits are made in place
 * so line numbers in stack traces still match the cell.
 */
import { createRequire } from "node:module";
import type { Node } from "acorn";

let acorn: typeof import("acorn") | undefined;
const parse: typeof import("acorn").parse = (...args) => {
  acorn ??= createRequire(import.meta.url)("acorn") as typeof import("acorn");
  return acorn.parse(...args);
};

interface Edit {
  start: number;
  end: number;
  text: string;
}

type AnyNode = Node & Record<string, any>;

/** Rewrite a JS cell into the source of an async arrow function that runs it and returns the last expression. */
export function rewriteCell(code: string): string {
  const program = parseCell(code);
  const edits: Edit[] = [];
  const hoisted: string[] = [];
  const body = program.body as AnyNode[];
  body.forEach((node, i) => {
    const last = i === body.length - 1;
    const edit = rewriteStatement(code, node, last, hoisted);
    if (edit !== null) edits.push(edit);
  });
  let out = code;
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  const prefix = hoisted.map((n) => `globalThis.${n} = ${n};`).join(" ");
  return `(async () => { ${prefix}\n${out}\n})`;
}

function parseCell(code: string): AnyNode {
  const opts = { ecmaVersion: "latest" as const, allowAwaitOutsideFunction: true, allowHashBang: true };
  try {
    return parse(code, { ...opts, sourceType: "script" }) as AnyNode;
  } catch (scriptError) {
    try {
      return parse(code, { ...opts, sourceType: "module" }) as AnyNode;
    } catch {
      throw scriptError;
    }
  }
}

const src = (code: string, n: AnyNode) => code.slice(n.start, n.end);

function rewriteStatement(code: string, node: AnyNode, last: boolean, hoisted: string[]): Edit | null {
  switch (node.type) {
    case "VariableDeclaration":
      return { start: node.start, end: node.end, text: declarationText(code, node) };
    case "FunctionDeclaration":
      hoisted.push(node.id.name);
      return null;
    case "ClassDeclaration":
      return { start: node.start, end: node.end, text: `${node.id.name} = ${src(code, node)};` };
    case "ImportDeclaration":
      return { start: node.start, end: node.end, text: importText(code, node) };
    case "ExportNamedDeclaration":
    case "ExportDefaultDeclaration":
    case "ExportAllDeclaration":
      throw new SyntaxError("`export` has no meaning in an execute cell: declare the name instead");
    case "ExpressionStatement":
      if (last && node.directive === undefined) return { start: node.start, end: node.end, text: `return (${src(code, node.expression)});` };
      if (node.directive === "use strict") return { start: node.start, end: node.end, text: "" };
      return null;
    default:
      return null;
  }
}

function declarationText(code: string, node: AnyNode): string {
  const parts = (node.declarations as AnyNode[]).map((d) => {
    if (d.init === null) {
      const name = src(code, d.id);
      // `var x;` keeps an existing value; `let x;` resets it
      return node.kind === "var" ? `(${JSON.stringify(name)} in globalThis || (${name} = undefined))` : `${name} = undefined`;
    }
    return `${src(code, d.id)} = ${src(code, d.init)}`;
  });
  return `void (${parts.join(", ")});`;
}

function importText(code: string, node: AnyNode): string {
  const from = `await import(${src(code, node.source)})`;
  const specs = node.specifiers as AnyNode[];
  if (specs.length === 0) return `${from};`;
  const out: string[] = [];
  const named: string[] = [];
  for (const s of specs) {
    if (s.type === "ImportNamespaceSpecifier") out.push(`${s.local.name} = __m`);
    else if (s.type === "ImportDefaultSpecifier") out.push(`${s.local.name} = __m.default`);
    else named.push(`${s.local.name} = __m[${JSON.stringify(s.imported.name ?? s.imported.value)}]`);
  }
  return `void await (async () => { const __m = ${from}; ${[...out, ...named].join("; ")}; })();`;
}

/** Turn a TypeScript cell into JavaScript (types stripped, line numbers kept). */
export async function transpileTs(code: string): Promise<string> {
  const { transform } = await import("sucrase");
  return transform(code, { transforms: ["typescript"], disableESTransforms: true, keepUnusedImports: true }).code;
}
