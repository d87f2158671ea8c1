/**
 * A 64-bit hash of a message id, as two 32-bit FNV-1a hashes with different offsets (signed, to
 * store in an Int32Array). Never both zero, so (0, 0) can mark an empty slot. Used where ids are
 * kept by the thousands without their strings: the engine's claims (shared with its heart thread)
 * and the controller's culled ids.
 */
export function idHash(s: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return a === 0 && b === 0 ? [1, 0] : [a | 0, b | 0];
}
