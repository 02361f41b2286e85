/**
 * What the readers of one hook share: which format is being read, and for a
 * Tetragon policy, whether the hook can still be loaded faithfully.
 *
 * The rule for Tetragon features tally does not implement: leaving a feature
 * out is fine when what the hook counts stays what Tetragon would report (an
 * enforcement action, a rate limit on events); it is not when the hook would
 * count more or less (an unsupported filter), and then the whole hook is left
 * out. Both are reported; neither is silent.
 */
import { ReturnArg } from './model';
import { Node } from './reader';
import type { ArgDecl } from './args';

export type Format = 'tally' | 'tetragon';

/** What a hook's format-specific parts (metrics, Tetragon's fields) need to know about it. */
export interface HookInfo {
  kind: 'kprobe' | 'tracepoint' | 'uprobe' | 'packet';
  args: ArgDecl[];
  return: boolean;
  returnArg?: ReturnArg;
}

export class HookCx {
  /** The hook cannot be loaded faithfully (Tetragon policies only). */
  dropped = false;

  constructor(
    readonly format: Format,
    /** Names the hook in messages, e.g. kprobe:tcp_connect. */
    readonly hookName: string,
  ) {}

  /**
   * A Tetragon feature tally does not implement, at `node`. `why` says what it
   * would take; 'drop' leaves the whole hook out because counting would
   * change, 'keep' leaves only the feature out. Point at the key (atKey) when
   * the feature is a whole field.
   */
  unsupported(node: Node, expected: string, why: string, effect: 'drop' | 'keep', atKey = false, found = atKey ? String(node.key) : node.found): void {
    if (effect === 'drop') {
      this.dropped = true;
      node.report('unsupported', expected, `${why}; so hook ${this.hookName} is not loaded`, found, atKey);
    } else {
      node.report('unsupported', expected, `${why}; it is left out and hook ${this.hookName} still counts what it matches`, found, atKey);
    }
  }

  /** A field that only shapes Tetragon's events, which tally does not export: a warning, at its key. */
  ignored(node: Node, why: string): void {
    node.report('warning', 'fields that affect counting', `${why}, so it is ignored`, String(node.key), true);
  }
}
