/** A hook that cannot be compiled for this kernel or this policy engine; the message says why. */
export class CompileError extends Error {}
