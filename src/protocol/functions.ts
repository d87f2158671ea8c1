/**
 * Shipping functions as source. A function is turned into an expression the engine can compile in
 * its namespace (so free names resolve to engine variables); what cannot work remotely is refused
 * here, before anything is sent, with a TypeError that says why and what to use instead.
 */
import { createRequire } from "node:module";
import type { Node } from "acorn";

// loaded on first use: engines and controllers that never normalize a function do not pay for the parser
let acorn: typeof import("acorn") | undefined;
const parseExpressionAt: typeof import("acorn").parseExpressionAt = (...args) => {
  acorn ??= createRequire(import.meta.url)("acorn") as typeof import("acorn");
  return acorn.parseExpressionAt(...args);
};

const NATIVE_RE = /\{\s*\[native code\]\s*\}\s*$/;
const cache = new WeakMap<Function, string>();
/** By source text too: a function literal in a loop is a new object each time, with the same text. */
const textCache = new Map<string, string>();
const TEXT_CACHE_LIMIT = 512;

/** The shippable source of `f` as a function expression. Throws TypeError when `f` cannot be shipped. */
export function functionSource(f: Function): string {
  let src = cache.get(f);
  if (src !== undefined) return src;
  const text = Function.prototype.toString.call(f);
  src = textCache.get(text);
  if (src === undefined || NATIVE_RE.test(text)) {
    src = normalize(f);
    if (textCache.size >= TEXT_CACHE_LIMIT) textCache.clear();
    textCache.set(text, src);
  }
  cache.set(f, src);
  return src;
}

function normalize(f: Function): string {
  const text = Function.prototype.toString.call(f).trim();
  const label = f.name ? `"${f.name}"` : "an anonymous function";
  if (NATIVE_RE.test(text)) {
    if (f.name.startsWith("bound ")) {
      const target = f.name.slice("bound ".length);
      throw new TypeError(
        `cannot ship a bound function${target ? ` ("${target}")` : ""}: its target and bound \`this\` are not visible as source. ` +
          "Apply an arrow function that calls what you need instead, or push the data and use a Reference.",
      );
    }
    throw new TypeError(
      `cannot ship ${label}: it is native code, with no source to send. Use fromModule("node:<module>", "${f.name || "name"}") ` +
        `for a builtin export, or wrap it: (...args) => ${f.name || "fn"}(...args).`,
    );
  }
  if (/^class\b/.test(text)) {
    throw new TypeError(`cannot apply ${label}: it is a class. Apply a function that constructs it, e.g. () => new ${f.name || "C"}().`);
  }
  const { source, method } = asExpression(text, label);
  // a method is checked in an object literal, where `super` parses, so its use is reported as such
  const fn = (method ? parseMethod(text) : null) ?? parse(source, label);
  if (fn.generator) {
    throw new TypeError(`cannot apply ${label}: generator functions return an iterator, which cannot be sent back. Return an array instead.`);
  }
  if ((method || fn.type === "ArrowFunctionExpression") && usesThis(fn)) {
    // an arrow's `this` is captured where it was defined (e.g. a class-field arrow): that object is not shipped
    const what = method ? "a method that uses `this`/`super`" : "an arrow function that uses the `this`/`super` of where it was defined";
    throw new TypeError(
      `cannot ship ${label}: it is ${what}, and that object does not exist on the engine. ` +
        "Pass the data it needs as arguments, push it, or use fromModule() for a function exported by a module.",
    );
  }
  return source;
}

/** Turn method shorthand (`m(x) {}`, `async m() {}`) into a function expression. */
function asExpression(text: string, label: string): { source: string; method: boolean } {
  if (/^(async\s+)?function\b/.test(text)) return { source: text, method: false };
  if (isArrow(text)) return { source: text, method: false };
  if (/^(get|set)\s*[\w$[]/.test(text) && !/^(get|set)\s*\(/.test(text)) {
    throw new TypeError(`cannot ship ${label}: it is an accessor (get/set). Apply a plain function instead.`);
  }
  const m = /^(async\s+)?(\*\s*)?/.exec(text)!;
  const rest = text.slice(m[0].length);
  const paren = methodParamsStart(rest);
  if (paren < 0) throw new TypeError(`cannot ship ${label}: its source is not a function expression`);
  return { source: `${m[1] ?? ""}function${m[2] ? "*" : ""} ${rest.slice(paren)}`, method: true };
}

function isArrow(text: string): boolean {
  if (/^(async\s*)?\(/.test(text) || /^(async\s+)?[\w$]+\s*=>/.test(text)) {
    try {
      const node = parseExpressionAt(text, 0, { ecmaVersion: "latest" }) as Node & { type: string };
      return node.type === "ArrowFunctionExpression";
    } catch {
      return false;
    }
  }
  return false;
}

/** Index of the parameter list's "(" after a method name (plain, quoted or computed). */
function methodParamsStart(rest: string): number {
  if (rest.startsWith("[")) {
    let depth = 0;
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === "[") depth++;
      else if (rest[i] === "]" && --depth === 0) return rest.indexOf("(", i);
    }
    return -1;
  }
  return rest.indexOf("(");
}

interface FnNode extends Node {
  type: string;
  generator: boolean;
  body: Node;
}

function parse(source: string, label: string): FnNode {
  try {
    return parseExpressionAt(source, 0, { ecmaVersion: "latest" }) as FnNode;
  } catch (err) {
    throw new TypeError(`cannot ship ${label}: its source does not parse as a function (${(err as Error).message})`);
  }
}

/** The function node of method shorthand text, or null when it does not parse as a method (private `#m`). */
function parseMethod(text: string): FnNode | null {
  try {
    const obj = parseExpressionAt(`({${text}\n})`, 0, { ecmaVersion: "latest" }) as Node & { properties?: Array<{ value?: FnNode }> };
    return obj.properties?.[0]?.value ?? null;
  } catch {
    return null;
  }
}

/** Does the function body use `this` or `super` outside nested non-arrow functions? */
function usesThis(fn: FnNode): boolean {
  const visit = (node: unknown, top: boolean): boolean => {
    if (node === null || typeof node !== "object") return false;
    if (Array.isArray(node)) return node.some((n) => visit(n, top));
    const n = node as Node & Record<string, unknown>;
    if (n.type === "ThisExpression" || n.type === "Super") return true;
    // nested functions and class bodies have their own `this`
    if (!top && (n.type === "FunctionExpression" || n.type === "FunctionDeclaration" || n.type === "ClassBody")) return false;
    return Object.keys(n).some((k) => k !== "type" && visit(n[k], false));
  };
  return visit(fn.body, false);
}
