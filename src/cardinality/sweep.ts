/**
 * One sweep over the counter store, run on a timer: each step is a part of
 * its own (fold-in.ts, staleness.ts, pending-labels.ts, promotion.ts), in
 * this order:
 *
 * 1. late counts of keys promotion retired earlier go to the overflow series;
 * 2. live cgroups whose labels changed are relabelled (relabel.ts);
 * 3. removed cgroups lose their mappings (staleness, phase one);
 * 4. each raw entry is settled (a namespace-pending key), labelled (or held
 *    back while its labels are not final), then handed to staleness if its
 *    cgroup was removed, else to fold-in;
 * 5. stale label sets are retired;
 * 6. keys the kernel will count again are promoted;
 * 7. label-set ids idle since the last sweep are released.
 */
import { CounterEntry, CounterStore } from '../bpf/counter-store';
import { KEY_LABEL_SET, KEY_OVERFLOW, pendingSelectors } from '../bpf/layout';
import { FoldIn } from './fold-in';
import { HeldCounts } from './held-counts';
import { KeyLabels } from './key-labels';
import { MetricFamilies } from './metric-families';
import { PendingCgroups, settle } from './pending-labels';
import { Promotion } from './promotion';
import { QuietEntries } from './quiet-entries';
import { Relabelling } from './relabel';
import { CgroupMappings } from './cgroup-mappings';
import { Staleness } from './staleness';
import { CgroupResolver, Removals } from './sources';
import { SweepCounts, SweepPass } from './sweep-pass';

export interface SweepParts {
  store: CounterStore;
  families: MetricFamilies;
  labels: KeyLabels;
  pending: PendingCgroups;
  held: HeldCounts;
  mappings: CgroupMappings;
  foldIn: FoldIn;
  staleness: Staleness;
  relabelling: Relabelling;
  promotion: Promotion;
  resolver: CgroupResolver;
  removals: Removals;
  counts: SweepCounts;
}

export class Sweeper {
  private readonly quiet = new QuietEntries();
  private sweeps = 0;

  constructor(private readonly p: SweepParts) {}

  /** Runs one sweep; returns true when fold-in work is left for another one soon. */
  sweep(now: number): boolean {
    const { store, held, removals, mappings, foldIn, staleness } = this.p;
    const sweep = ++this.sweeps;
    store.beginPass();
    // Counts added to keys retired in an earlier sweep came after their series was shown for the last time.
    store.lateCounts((key, n) => held.addOverflow(key.metric, key.bucket ?? 0, n));
    const entries = store.dump();
    const raw = entries.filter((e) => e.key.flags !== KEY_OVERFLOW && e.key.flags !== KEY_LABEL_SET);
    if (removals.needsRescan()) removals.rescan(new Set([...raw.map((e) => e.key.cgroupId), ...mappings.cgroupIds()]));

    this.quiet.nextSweep();
    const pass = new SweepPass(sweep, now, new Set(this.p.resolver.liveSetKeys()), store, this.quiet, held, this.p.counts);
    this.p.relabelling.run(raw, pass);
    staleness.unmapRemoved(pass);
    foldIn.begin();
    const waiting = new Set<bigint>();
    for (const e of raw) this.raw(e, pass, waiting);
    const backlog = foldIn.end();
    this.p.pending.keepOnly(waiting);

    const retiringIds = staleness.retireStale(entries, pass);
    this.p.promotion.run(entries, pass);
    staleness.releaseIdle(retiringIds, pass.live);
    staleness.forgetIdleRemovals(now);
    return backlog;
  }

  /** A raw cgroup's entry (or a namespace-pending one): settled, labelled, then retired or folded in. */
  private raw(e: CounterEntry, pass: SweepPass, waiting: Set<bigint>): void {
    const { families, labels: keyLabels, staleness } = this.p;
    const cgroupId = e.key.cgroupId;
    const removed = cgroupId !== 0n && staleness.removedFor(cgroupId, pass.now);
    let key = e.key;
    let counts = true;
    if (pendingSelectors(e.key)) {
      const settled = settle(e.key, families, keyLabels, removed);
      if (!settled) {
        if (families.pendingOf(e.key.metric)) {
          waiting.add(cgroupId);
        } else if (pass.quiet(e)) {
          // A pending id no hook owns any more (its policy is gone; an event in flight wrote it late): nothing reads it.
          this.p.store.delete(e.key);
          this.p.counts.deletedEntries++;
        }
        return;
      }
      ({ key, counts } = settled);
    }
    const labels = keyLabels.labelsOf(key, removed);
    if (!labels) {
      waiting.add(cgroupId);
      return;
    }
    if (removed) {
      staleness.removedEntry(e, key, labels, counts, pass);
      return;
    }
    if (counts) pass.live.add(labels.setKey);
    if (cgroupId === 0n) return;
    this.p.foldIn.entry(e, key, labels, counts, pass);
  }
}
