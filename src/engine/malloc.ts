/**
 * glibc's allocator settings for the engines a launcher starts, unless the environment sets its own
 * `GLIBC_TUNABLES`: large blocks come from the heap instead of a fresh `mmap` each, and up to
 * 256 MB freed at the heap's top stay mapped (room for a replaced 100 MB array beside the other
 * blocks a session frees; at 128 MB, later pushes of a long session often landed in fresh memory).
 * A 100 MB array received into fresh memory costs ~25 000 page faults (~70 ms on this kind of VM,
 * more than the transfer itself); into reused memory, none. MPI libraries tune malloc the same way
 * for the same reason. The price: an engine's resident memory stays nearer its peak once it has
 * held large arrays (docs/performance.md has the figures). Ignored by other C libraries. The
 * controller keeps glibc's defaults: it does not receive direct-view data, and a hub that gives
 * memory back matters more than its bulk speed.
 */
export const ENGINE_MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=268435456";

/**
 * glibc reads the settings once, as the process starts. An engine then drops the ones its launcher
 * chose from its environment, so that processes the user's code starts get the user's own.
 */
export function forgetLauncherTunables(env: NodeJS.ProcessEnv = process.env): void {
  if (env.GLIBC_TUNABLES === ENGINE_MALLOC_TUNABLES) delete env.GLIBC_TUNABLES;
}
