/**
 * The HTTP and Kubernetes session cache: a session with a request or stream still open (a watch,
 * followed logs, a WebSocket) does not end idle under it; its token's expiry still ends it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Pipeline } from '../../../src/pipeline/pipeline.js';
import type { SessionInfo } from '../../../src/pipeline/session.js';
import { createSessionCache } from '../../../src/connectors/request-proxy/session-cache.js';

function fakePipeline(expiresAtSec: number): { pipeline: Pipeline; ended: string[] } {
  const ended: string[] = [];
  let n = 0;
  const pipeline = {
    openSession: async () => ({
      session: { id: `s${++n}`, connection: 'api', protocol: 'http', role: 'agent', source: '127.0.0.1:1', upstreamTarget: 'x', upstreamUser: 'y', startedAt: 0, identity: { issuer: 'i', subject: 'a', roles: ['agent'], claims: {}, expiresAt: expiresAtSec } } as unknown as SessionInfo,
    }),
    endSession: async (s: SessionInfo, summary: { reason: string }) => {
      ended.push(`${s.id}:${summary.reason}`);
    },
  } as unknown as Pipeline;
  return { pipeline, ended };
}

const req = { token: 't', role: 'agent', connection: 'api', source: '127.0.0.1:1' };
/** The sweep runs every second at the shortest. */
const sweep = (): Promise<void> => new Promise((r) => setTimeout(r, 1150));

describe('HTTP session cache', () => {
  it('does not end a session idle while a stream of it is open; ends it idle once the stream closed', async () => {
    let now = 1_000_000;
    const { pipeline, ended } = fakePipeline(10_000_000);
    const cache = createSessionCache(pipeline, { protocol: 'http', idleMs: 100, clock: () => now });
    try {
      const s = await cache.get(req);
      const release = cache.hold(s);
      now += 10_000;
      await sweep();
      assert.deepEqual(ended, [], 'a stream open for longer than the idle limit keeps its session');
      release();
      release(); // twice is harmless
      await sweep();
      assert.deepEqual(ended, [], 'idle counts from when the stream closed');
      now += 200;
      await sweep();
      assert.deepEqual(ended, ['s1:idle']);
    } finally {
      await cache.close();
    }
  });

  it('ends a session at its token expiry even with a stream open', async () => {
    let now = 1_000_000;
    const { pipeline, ended } = fakePipeline(2_000);
    const cache = createSessionCache(pipeline, { protocol: 'http', idleMs: 100, clock: () => now });
    try {
      const s = await cache.get(req);
      cache.hold(s);
      now = 2_000_000;
      await sweep();
      assert.deepEqual(ended, ['s1:token expired']);
    } finally {
      await cache.close();
    }
  });
});
