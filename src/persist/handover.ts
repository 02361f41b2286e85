/**
 * Counters that survive an agent restart or upgrade (--bpf-pin-dir,
 * docs/restart.md). The sequence, across two agents A and B:
 *
 * 1. A stops: its last read (CountingCore.handOver) gives its last word,
 *    the carry, and each kernel entry's value then, its base; A pins its
 *    counter maps, tally_epoch and its programs' links, then the state. Its
 *    programs keep counting, into its pinned maps, while no agent runs.
 * 2. B starts: it reads the state and decides (compat.ts). Adopting, it
 *    shares A's tally_epoch and loads its own programs with the next epoch:
 *    attached beside A's, they count nothing yet. The carry is shown from
 *    B's first scrape, so no series restarts from zero.
 * 3. B's policies are loaded: one write to tally_epoch, and from that event
 *    on B's programs count and A's do not (each event counted once). B
 *    unpins A's links (they detach), reads what A's programs counted since
 *    A's last read out of A's now idle maps, in B's ids (translate.ts), and
 *    removes the pins.
 *
 * An incompatible directory is replaced: its links unpinned (A's programs
 * stop), its pins removed, the reason logged and exported.
 */
import { native } from '../native/addon';
import { readCounterMap } from '../bpf/counter-map';
import { counterKeyId } from '../bpf/counter-store';
import { KEY_RAW_CGROUP } from '../bpf/layout';
import { namespaceId } from '../labels/namespace-id';
import { KernelCounters } from '../collectors/kernel-counters';
import { BinaryPaths } from '../labels/binary-paths';
import { CgroupRemovals } from '../labels/cgroup-removals';
import { WIDEST_LABEL_FILTER } from '../labels/label-filter';
import { Carried } from '../cardinality/adoption';
import { SeriesValues } from '../cardinality/series-values';
import { labelKey } from '../cardinality/series-limiter';
import { Logger } from '../util/log';
import { VERSION } from '../util/version';
import { decide, Decision } from './compat';
import { PinDir, PinnedMap } from './pin-dir';
import { CarriedSeries, HandoverState, layoutStamp, STATE_FORMAT } from './state';
import { translate } from './translate';
import { PeerTable, peerOfName } from '../peers/peer-table';

export type Outcome = 'fresh' | 'adopted' | 'replaced';

/** The labels a label set is made of (the filter's cgroup-derived ones): what liveness is decided on. */
const CGROUP_LABELS: ReadonlySet<string> = new Set(WIDEST_LABEL_FILTER.cgroupLabels);

/** How long A's programs may still be inside an event that passed the epoch check when B flips it. */
const FLIP_SETTLE_MS = 50;

/** This build's layout stamp: the shapes the addon reports of every shared key and value. */
export function currentLayout(): string {
  const l = native().layout;
  return layoutStamp({ counterKey: l.counterKey, cgroupMapping: l.cgroupMapping, fastEntry: l.fastEntry, constants: { ...l.constants } });
}

export class Handover {
  readonly pins: PinDir;
  readonly outcome: Outcome;
  readonly reason?: string;
  /** This agent's tally_owner_epoch. */
  readonly epoch: number;
  private readonly state?: HandoverState;
  /** The previous agent's tally_epoch, shared with this agent's core object. */
  private epochFd?: number;
  private counters?: KernelCounters;
  /** This agent's peer table: the previous agent's peer ids are translated into it, and the next agent's from it. */
  private peers?: PeerTable;

  private constructor(pins: PinDir, d: Decision, private readonly log: Logger) {
    this.pins = pins;
    if (d.action === 'adopt') {
      this.state = d.state;
      this.epochFd = pins.openMap('tally_epoch');
      this.outcome = this.epochFd === undefined ? 'replaced' : 'adopted';
      if (this.epochFd === undefined) this.reason = `${pins.mapPath('tally_epoch')} is missing`;
    } else {
      this.outcome = d.action === 'fresh' ? 'fresh' : 'replaced';
      if (d.action === 'replace') this.reason = d.reason;
    }
    this.epoch = this.state && this.epochFd !== undefined ? this.state.epoch + 1 : 1;
    if (this.outcome === 'replaced') {
      this.state = undefined;
      const removed = pins.clear();
      log.warn('the pinned counters of a previous agent cannot be read by this one: replaced, they restart from zero', { dir: pins.dir, reason: this.reason, removed: removed.length });
    }
  }

  /** Reads the pin directory and decides what to do with it, before anything is loaded. */
  static prepare(dir: string, labelFilter: string, log: Logger): Handover {
    const pins = new PinDir(dir);
    pins.checkBpffs();
    return new Handover(pins, decide(pins.read(), { layout: currentLayout(), labelFilter }), log);
  }

  /** Maps the core object shares rather than creates. */
  get reuseMaps(): Record<string, number> {
    return this.epochFd === undefined ? {} : { tally_epoch: this.epochFd };
  }

  /**
   * Once the counters exist, before any policy loads: a fresh start makes
   * its own epoch current; an adoption shows the previous agent's carry and
   * knows its binaries' paths.
   */
  begin(counters: KernelCounters, binaries: BinaryPaths, removals: Pick<CgroupRemovals, 'rescan'>, ttlMs: number): void {
    this.counters = counters;
    if (!this.state) {
      setEpoch(counters.sharedMaps().tally_epoch, this.epoch);
      return;
    }
    for (const [id, path] of this.state.binaries) binaries.learn({ binaryId: BigInt(id), path, truncated: false });
    // The previous agent's mappings, so that live cgroups keep their label sets (and series) even while idle.
    const labelSets = new Map(this.state.labelSets.map((l) => [l.id, l]));
    const restored: bigint[] = [];
    for (const [cgroup, labelSet, ns] of this.state.cgroups) {
      const ls = labelSets.get(labelSet);
      if (ls && counters.core.restoreMapping(BigInt(cgroup), ls.key, ls.labels, BigInt(ns))) restored.push(BigInt(cgroup));
    }
    // Those removed while no agent ran are removed as of now: exported until the TTL retires them.
    removals.rescan(restored);
    const carry = new Map<string, Map<string, Carried>>();
    for (const f of this.state.carry) {
      carry.set(f.name, new Map(f.series.map((s) => [s.key, { labels: s.labels, value: s.value, buckets: s.buckets ? new Map(s.buckets) : undefined }])));
    }
    counters.core.adoption.setCarry(carry, Date.now() + ttlMs);
  }

  /** Once this agent's policies are loaded: takes over from the previous agent's programs (see the top of this file). */
  /** The peer table of metrics by peer (tcp-peers), once it exists: before takeOver(). */
  usePeers(peers: PeerTable): void {
    this.peers = peers;
  }

  async takeOver(): Promise<void> {
    const state = this.state;
    const counters = this.counters;
    if (!state || !counters || this.epochFd === undefined) return;
    setEpoch(this.epochFd, this.epoch);
    const links = this.pins.detachLinks();
    await new Promise((r) => setTimeout(r, FLIP_SETTLE_MS));
    const fds: number[] = [];
    try {
      const open = (name: PinnedMap): number => {
        const fd = this.pins.openMap(name);
        if (fd === undefined) throw new Error(`${this.pins.mapPath(name)} is missing`);
        fds.push(fd);
        return fd;
      };
      const entries = readCounterMap(open('tally_counters')).entries;
      const overflow = readCounterMap(open('tally_overflow')).entries;
      const core = counters.core;
      const peers = this.peers;
      const t = translate(state, entries, overflow, {
        metricId: (name, type, signature) => core.families.idsOf(name).find((id) => {
          const m = core.families.get(id)?.metric;
          return m?.type === type && m.signature === signature;
        }),
        labelSetId: (key, labels) => core.labelSets.idFor(key, labels),
        peerSlots: (id) => core.families.get(id)?.metric.peerSlots ?? [],
        peerId: (name) => {
          const peer = peerOfName(name);
          try {
            return peer && peers ? peers.idOf(peer) : undefined;
          } catch {
            return undefined; // MAX_PEER_IDS named already: dropped and counted
          }
        },
      });
      const held = core.adoption.holdCarried(
        (name) => {
          const f = core.families.family(name);
          return f && f.metric.sumOf === undefined ? [...f.ids][0] : undefined;
        },
        (labels) => labelKey(Object.fromEntries(Object.entries(labels).filter(([k]) => CGROUP_LABELS.has(k)))),
      );
      core.adoption.adopt(t.entries);
      for (const [metric, bucket, n] of t.overflow) core.adoptOverflow(metric, bucket, n);
      this.log.info('took over the counters of the previous agent', {
        dir: this.pins.dir,
        previous_version: state.version,
        stopped_ms_ago: Date.now() - state.stoppedAt,
        links_detached: links,
        entries: entries.length,
        series_held: held,
        waiting_for_labels: core.adoption.waitingEntries,
        ...(t.dropped ? { dropped_counts: t.dropped } : {}),
      });
      if (t.dropped) this.log.warn('counts of metrics this agent does not define alike were dropped', { counts: t.dropped });
    } finally {
      for (const fd of fds) native().closeFd(fd);
      native().closeFd(this.epochFd);
      this.epochFd = undefined;
      this.pins.clear();
      counters.invalidate();
    }
    // One read now places every label set taken over in the series limiter, before a sweep could find one idle.
    await counters.snapshot();
  }

  /**
   * At stop, while everything is still loaded: the last read, then the
   * pins (see the top of this file). `links` are the fds of every running
   * hook's links.
   */
  async handOff(links: number[], labelFilter: string, binaries: BinaryPaths): Promise<void> {
    const counters = this.counters;
    if (!counters) return;
    const core = counters.core;
    counters.stopSweeping(); // its waits yield to the event loop: no sweep may move or promote keys meanwhile
    const now = Date.now();
    // Binaries of what is counted now too: A's programs may count again under a key its last read took.
    const binaryIds = new Set<bigint>();
    for (const e of readCounterMap(counters.sharedMaps().tally_counters).entries) binaryIds.add(e.key.binaryId);
    const { read, overflow, bases } = await core.handOver(() => now, () => new Promise((r) => setTimeout(r, FLIP_SETTLE_MS)));
    const carry = [...read.series].map(([name, series]) => ({ name, type: core.families.family(name)?.type ?? 'counter', series: series.map(carried) }));
    for (const e of readCounterMap(counters.sharedMaps().tally_counters).entries) binaryIds.add(e.key.binaryId);
    // Raw cgroups whose labels this agent knows go as mappings too: the next agent may not resolve them any more (removed meanwhile).
    const cgroups = readMappings(counters.sharedMaps().tally_cgroup_label_sets);
    const mapped = new Set(cgroups.map(([id]) => id));
    for (const e of bases) {
      const id = e.key.cgroupId.toString();
      if (e.key.flags !== KEY_RAW_CGROUP || e.key.cgroupId === 0n || mapped.has(id)) continue;
      const cl = core.cgroupLabelsOf(e.key.cgroupId);
      if (!cl) continue;
      cgroups.push([id, core.labelSets.idFor(cl.key, cl.labels), namespaceId(cl.namespace).toString()]);
      mapped.add(id);
    }
    const state: HandoverState = {
      format: STATE_FORMAT,
      layout: currentLayout(),
      version: VERSION,
      epoch: this.epoch,
      stoppedAt: now,
      labelFilter,
      metrics: core.families.all().flatMap((f) => [...f.ids].map((id) => core.families.get(id)!.metric)).map((m) => ({ id: m.id, name: m.name, type: m.type, signature: m.signature ?? '' })),
      labelSets: [...core.labelSets.entries()].map(([id, ls]) => ({ id, key: ls.key, labels: ls.labels })),
      cgroups,
      binaries: [...binaryIds].flatMap((id): [string, string][] => {
        const p = binaries.path(id);
        return p === undefined ? [] : [[id.toString(), p]];
      }),
      carry,
      entryBase: bases.map((e): [string, number] => [counterKeyId(e.key), e.value]),
      overflowBase: overflow.map((e) => ({ metric: e.key.metric, bucket: e.key.bucket ?? 0, value: e.value })),
      ...(this.peers ? { peers: [...this.peers.peerNames] } : {}),
    };
    const fds = counters.sharedMaps();
    this.pins.write(state, { tally_counters: fds.tally_counters, tally_overflow: fds.tally_overflow, tally_epoch: fds.tally_epoch }, links);
    this.log.info('counters pinned for the next agent', { dir: this.pins.dir, links: links.length, series: carry.reduce((n, f) => n + f.series.length, 0) });
  }
}

function carried(s: SeriesValues): CarriedSeries {
  return { key: s.key ?? labelKey(s.labels), labels: { ...s.labels }, value: s.value, ...(s.buckets ? { buckets: [...s.buckets] } : {}) };
}

/** tally_cgroup_label_sets as [cgroup id, label-set id, namespace id]. */
function readMappings(fd: number): [string, number, string][] {
  const d = native().mapLookupAll(fd);
  const m = native().layout.cgroupMapping;
  const out: [string, number, string][] = [];
  for (let i = 0; i < d.count; i++) {
    const v = d.values.subarray(i * d.valueStride, (i + 1) * d.valueStride);
    out.push([d.keys.readBigUInt64LE(i * d.keySize).toString(), v.readUInt32LE(m.label_set), v.readBigUInt64LE(m.namespace_id).toString()]);
  }
  return out;
}

function setEpoch(fd: number, epoch: number): void {
  const v = Buffer.alloc(8);
  v.writeBigUInt64LE(BigInt(epoch));
  native().mapUpdate(fd, Buffer.alloc(4), v);
}
