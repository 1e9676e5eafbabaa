// Types of the G.191 reference port (scripts/gen-g711-vectors.mjs) for the TypeScript that uses it.
export function alawCompress(linbuf: ArrayLike<number>): Int16Array;
export function alawExpand(logbuf: ArrayLike<number>): Int16Array;
export function ulawCompress(linbuf: ArrayLike<number>): Int16Array;
export function ulawExpand(logbuf: ArrayLike<number>): Int16Array;
