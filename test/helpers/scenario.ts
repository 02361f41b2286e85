/**
 * The common shape of an end-to-end suite: one agent with some flags, and a
 * few leaf cgroups, all set up before the suite's tests and torn down after
 * them, whatever happens in between.
 */
import { after, before } from 'node:test';
import { AgentProcess } from './agent-process';
import { TestCgroup } from './cgroup';

export interface Scenario {
  agent: AgentProcess;
  cg: Record<string, TestCgroup>;
}

export function useScenario(flags: string[], roles: string[], opts: Parameters<typeof AgentProcess.start>[1] = {}): Scenario {
  const sc = { cg: {} } as Scenario;
  before(async () => {
    for (const r of roles) sc.cg[r] = TestCgroup.create(r);
    sc.agent = await AgentProcess.start(flags, opts);
  });
  after(async () => {
    for (const cg of Object.values(sc.cg)) cg.destroy();
    await sc.agent?.stop();
  });
  return sc;
}
