/** The AsyncResult chapter's examples (examples/), run as `npm start` runs them, checked by their output. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { TEST_DIR } from "./helpers.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

describe("examples", () => {
  it("run-all runs the four examples of the AsyncResult chapter on a local cluster", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/run-all.ts"], {
      cwd: ROOT, env: { ...process.env, TSPARALLEL_DIR: TEST_DIR }, timeout: 180_000, maxBuffer: 10_000_000,
    });
    // 01: getDict and pushing the pid map
    assert.match(stdout, /pids by engine: \{"0":\d+,"1":\d+\}/);
    assert.match(stdout, /every engine now has pidMap: true/);
    assert.match(stdout, /engine 0's own pid from its pidMap: true/);
    // 02: scatter + Reference + iterating results as they arrive (engine 1 sleeps 1 s)
    assert.match(stdout, /Engine IDs: \[0,1\]/);
    const arrivals = [...stdout.matchAll(/^ {2}(\d): (\d+\.\d+)$/gm)].map((m) => Number(m[2]));
    assert.equal(arrivals.length, 2);
    assert.ok(arrivals[0]! < 0.9 && arrivals[1]! >= 0.9, `arrival times ${arrivals}`);
    // 03: chunked and unordered maps, with per-task timings
    assert.match(stdout, /task 0 on engine [01]: \d+\.\d+/);
    assert.match(stdout, /length 100, msgIds 100, progress 100/);
    assert.match(stdout, /length 100, msgIds 25, progress 100/);
    assert.match(stdout, /await amr is still in input order: true/);
    assert.match(stdout, /speedup \d+\.\d+×/);
    // 04: RMS
    assert.equal([...stdout.matchAll(/58\.028845747399714/g)].length, 3);
    assert.match(stdout, /4\/4 examples ok/);
    assert.match(stdout, /cluster stopped/);
  });
});
