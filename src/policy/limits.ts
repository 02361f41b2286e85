/**
 * Every numeric cap of the policy format, in one place. The BPF side sizes its
 * config maps and loops from these, so a policy within them always fits; a
 * policy beyond them fails validation with an error naming the cap.
 *
 * Where Tetragon documents a limit for the same thing, the cap is at least as
 * large, so Tetragon's policies load unchanged.
 */
export const LIMITS = {
  /** Hooks per policy, counting each symbol of an uprobe as one hook. */
  hooksPerPolicy: 64,
  /** Symbols of one uprobe entry. */
  symbolsPerUprobe: 16,
  /** Args declared per hook. */
  argsPerHook: 6,
  /** Arg index of kprobes and uprobes: the six argument registers. */
  maxProbeArgIndex: 5,
  /** Arg index of tracepoints: a format field (common fields included) or a TP_PROTO argument. */
  maxTracepointArgIndex: 31,
  /** Selectors per hook (ORed). Tetragon documents 5. */
  selectorsPerHook: 5,
  /** matchArgs entries per selector. Tetragon documents 5. */
  matchArgsPerSelector: 5,
  /** matchBinaries entries per selector. */
  matchBinariesPerSelector: 4,
  /** matchNamespaces entries per selector. */
  matchNamespacesPerSelector: 4,
  /** Values of one matchArgs, matchBinaries or matchNamespaces entry. */
  valuesPerFilter: 16,
  /** Bytes of one string value (paths, prefixes, postfixes, label values). */
  stringValueBytes: 128,
  /** Metrics per hook. */
  metricsPerHook: 8,
  /** Extra labels per metric. */
  labelsPerMetric: 2,
  /** Range of an extra label's maxValues. */
  minLabelValues: 1,
  maxLabelValues: 1024,
  /** Prefixes of one extra label. */
  prefixesPerLabel: 16,
  /** Characters of a metric or label name. */
  nameLength: 128,
  /** Characters of a metric's help text. */
  helpLength: 256,
  /** Bytes of one policy file; a larger one is refused before it is read. */
  fileBytes: 1024 * 1024,
  /**
   * Policy documents in one file; a file with more is refused whole, before
   * any of its documents is validated. Each document is a policy to compile
   * and load: past a hundred, they belong in several files (or agents).
   */
  policiesPerFile: 100,
  /**
   * Hooks of all the policy files an agent runs, built-ins included. Each
   * hook holds BPF programs, links, maps and their fds, and kernel memory; a
   * file that would take the agent past this is refused whole, and what runs
   * already is left as it is. 256 is four policies at hooksPerPolicy.
   */
  hooksPerAgent: 256,
} as const;
