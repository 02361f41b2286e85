/**
 * What an exporter remembers of each series between collections: when its
 * cumulative count started, and its attributes (computed once, so a series
 * keeps the same attributes, and so its identity, for as long as it lives).
 *
 * A series in the first collection started with the agent. One that
 * appears later gets the time of the previous collection, which did not
 * have it (a cgroup whose labels were pending may have counted a little
 * earlier, held back until they were known). A series that disappears and
 * comes back (staleness removed it; its count restarted from zero) gets a
 * new start time, which tells the backend about the reset. Memory holds
 * only the series of the last collection.
 */
import type { Attributes, HrTime } from '@opentelemetry/api';

export interface SeriesEntry {
  start: HrTime;
  attributes: Attributes;
}

export class SeriesMemory {
  private previous = new Map<string, Map<string, SeriesEntry>>();
  private current = new Map<string, Map<string, SeriesEntry>>();
  private since: HrTime;

  constructor(agentStart: HrTime) {
    this.since = agentStart;
  }

  /** The entry of one series of `metric` in the collection under way. */
  entry(metric: string, key: string, attributes: () => Attributes): SeriesEntry {
    let now = this.current.get(metric);
    if (!now) this.current.set(metric, (now = new Map()));
    let e = now.get(key);
    if (!e) {
      e = this.previous.get(metric)?.get(key) ?? { start: this.since, attributes: attributes() };
      now.set(key, e);
    }
    return e;
  }

  /** Ends a collection taken at `at`: series it did not have are forgotten. */
  commit(at: HrTime): void {
    this.previous = this.current;
    this.current = new Map();
    this.since = at;
  }

  /** A collection that failed before it was exported: keep the previous state. */
  abandon(): void {
    this.current = new Map();
  }

  get size(): number {
    let n = 0;
    for (const m of this.previous.values()) n += m.size;
    return n;
  }
}
