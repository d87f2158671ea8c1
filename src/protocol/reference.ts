/**
 * Names that travel by reference: a `Reference` is resolved on the engine (to that engine's value
 * of the name), a `ModuleFunction` is imported on the engine.
 */

const REFERENCE_BRAND = Symbol.for("tsparallel.Reference");
const MODULE_FN_BRAND = Symbol.for("tsparallel.ModuleFunction");

/**
 * A name in the engine's namespace, resolved on the engine before the call: as an argument, inside
 * array and object arguments, or as the applied function itself. Paths work: `new Reference("a.b[0]")`.
 *
 * @example
 * await dv.scatter("id", rc.ids, { flatten: true });
 * await dv.apply((id) => id * 2, new Reference("id"));
 */
export class Reference {
  readonly name: string;

  constructor(name: string) {
    if (typeof name !== "string" || name.trim().length === 0) {
      throw new TypeError(`Reference needs a non-empty name (a variable or path such as "a.b[0]"), got ${String(name)}`);
    }
    this.name = name;
  }

  get [REFERENCE_BRAND](): true {
    return true;
  }

  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[REFERENCE_BRAND] === true;
  }

  toString(): string {
    return `Reference(${this.name})`;
  }
}

/** A function exported by a module, imported on the engine. Create it with `fromModule`. */
export class ModuleFunction<F extends (...args: never[]) => unknown = (...args: never[]) => unknown> {
  readonly specifier: string;
  readonly exportName: string;
  /** Phantom field carrying the function type (never set). */
  declare readonly __fn?: F;

  constructor(specifier: string, exportName: string) {
    this.specifier = specifier;
    this.exportName = exportName;
  }

  get [MODULE_FN_BRAND](): true {
    return true;
  }

  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[MODULE_FN_BRAND] === true;
  }

  toString(): string {
    return `fromModule(${this.specifier}, ${this.exportName})`;
  }
}
