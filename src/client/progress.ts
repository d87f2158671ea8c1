/**
 * `waitInteractive`: progress while waiting. On a TTY one line redrawn in place with `\r` (which
 * Jupyter frontends render too); otherwise a plain status line per interval; a final line when done.
 */
export interface WaitInteractiveOptions {
  /** Seconds between updates (default 0.1 on a TTY, 1 otherwise). */
  interval?: number;
  /** Stop waiting after this many seconds (the result keeps running). */
  timeout?: number | null;
  /** Where to write (default process.stderr). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

interface Progressing {
  readonly progress: number;
  readonly length: number;
  readonly elapsed: number;
  readonly fname: string;
  ready(): boolean;
  wait(timeout?: number | null): Promise<boolean>;
}

const BAR = 24;

export function formatProgress(done: number, total: number, elapsed: number, name: string, withBar: boolean): string {
  const frac = total > 0 ? done / total : 1;
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const rate = elapsed > 0 ? done / elapsed : 0;
  const rateText = rate >= 10 ? `${rate.toFixed(0)}/s` : `${rate.toFixed(2)}/s`;
  const bar = withBar ? ` |${"█".repeat(Math.round(frac * BAR)).padEnd(BAR, " ")}|` : "";
  return `${name}: ${done}/${total} ${pct}${bar} ${elapsed.toFixed(1)}s ${rateText}`;
}

export async function waitInteractive(ar: Progressing, opts: WaitInteractiveOptions = {}): Promise<boolean> {
  const stream = opts.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const interval = opts.interval ?? (tty ? 0.1 : 1);
  if (!(interval > 0)) throw new TypeError("Invalid option in waitInteractive(): \"interval\" must be a number of seconds > 0");
  const deadline = opts.timeout === undefined || opts.timeout === null || opts.timeout < 0 ? Infinity : Date.now() + opts.timeout * 1000;
  const line = () => formatProgress(ar.progress, ar.length, ar.elapsed, ar.fname, tty);
  let width = 0;
  const draw = (text: string) => {
    if (tty) {
      stream.write(`\r${text.padEnd(width, " ")}`);
      width = text.length;
    } else stream.write(`${text}\n`);
  };
  while (!ar.ready() && Date.now() < deadline) {
    draw(line());
    await ar.wait(Math.min(interval, Math.max(0, (deadline - Date.now()) / 1000)));
  }
  draw(line());
  if (tty) stream.write("\n");
  return ar.ready();
}
