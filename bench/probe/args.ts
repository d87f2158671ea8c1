/** Command-line options of the probes: `--name value` pairs over numeric defaults; anything else is refused by name. */
export function probeArgs<T extends { [K in keyof T]: number }>(argv: readonly string[], defaults: T, integers = true): T {
  const args = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, "");
    const value = Number(argv[i + 1]);
    const ok = integers ? Number.isInteger(value) : Number.isFinite(value);
    if (!(key in args) || !ok || value <= 0) throw new TypeError(`unknown option or bad value: ${argv[i]} ${argv[i + 1] ?? ""}`);
    (args as Record<string, number>)[key] = value;
  }
  return args;
}
