/**
 * The HTTP and Kubernetes session cache: a session with a request or stream still open (a watch,
 * followed logs, a WebSocket) does not end idle under it; past its token's expiry it takes no new
 * request, and ends once its streams closed.
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
      // Its streams may run an hour past the token (identity.tokenExpiryGrace); new requests may not.
      session: { id: `s${++n}`, connection: 'api', protocol: 'http', role: 'agent', source: '127.0.0.1:1', upstreamTarget: 'x', upstreamUser: 'y', startedAt: 0, endsAt: expiresAtSec * 1000 + 3_600_000, identity: { issuer: 'i', subject: 'a', roles: ['agent'], claims: {}, expiresAt: expiresAtSec } } as unknown as SessionInfo,
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

  it('past its token expiry a session takes no request; with a stream open it ends when the stream closes', async () => {
    let now = 1_000_000;
    const { pipeline, ended } = fakePipeline(2_000); // the token expires at 2_000_000 ms
    const cache = createSessionCache(pipeline, { protocol: 'http', idleMs: 2000, clock: () => now });
    try {
      const s1 = await cache.get(req);
      const release = cache.hold(s1);
      now = 2_000_000;
      const s2 = await cache.get(req);
      assert.notEqual(s2.id, s1.id, 'a request after the expiry is not served by the expired session (a new one verifies the token again)');
      assert.deepEqual(ended, [], 'its stream still runs (cut at the session’s endsAt by the proxy)');
      release();
      assert.deepEqual(ended, ['s1:token expired'], 'ended when its last stream closed');
      await sweep();
      assert.deepEqual(ended, ['s1:token expired', 's2:token expired'], 'the sweep ends an expired session with nothing open');
    } finally {
      await cache.close();
    }
  });
});
