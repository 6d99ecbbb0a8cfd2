import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { atSessionEnd, sessionExpired, tokenExpiredError, type SessionInfo } from '../../src/pipeline/session.js';

function session(endsAt?: number): SessionInfo {
  return {
    id: 's1',
    connection: 'appdb',
    protocol: 'postgres',
    identity: { issuer: 'https://issuer.test', subject: 'agent', roles: ['reader'], claims: {}, expiresAt: 1_767_225_600 },
    role: 'reader',
    source: '127.0.0.1:1',
    upstreamTarget: '127.0.0.1:5432/app',
    upstreamUser: 'app_ro',
    startedAt: 0,
    ...(endsAt !== undefined ? { endsAt } : {}),
  } as SessionInfo;
}

describe('a session’s end at its token’s expiry', () => {
  it('fires at once for a session already past it, later for one before it, never without endsAt', async () => {
    let fired = 0;
    atSessionEnd(session(Date.now() - 1), () => (fired += 1));
    assert.equal(fired, 1);
    atSessionEnd(session(Date.now() + 30), () => (fired += 1));
    atSessionEnd(session(), () => (fired += 100));
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(fired, 2);
  });

  it('waits out an expiry past what one timer holds (2^31 ms) instead of firing at once, and can be cancelled', async () => {
    let fired = false;
    const cancel = atSessionEnd(session(Date.now() + 40 * 86_400_000), () => (fired = true));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(fired, false);
    cancel();
    const cancelled = atSessionEnd(session(Date.now() + 20), () => (fired = true));
    cancelled();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(fired, false);
  });

  it('says when the token expired, as a 28000 / 401 error', () => {
    assert.equal(sessionExpired(session(1000), 999), false);
    assert.equal(sessionExpired(session(1000), 1000), true);
    assert.equal(sessionExpired(session(), Number.MAX_SAFE_INTEGER), false);
    const e = tokenExpiredError(session(1000));
    assert.equal(e.code, 'SLUICE_TOKEN_EXPIRED');
    assert.equal(e.sqlstate, '28000');
    assert.equal(e.httpStatus, 401);
    assert.match(e.message, /expired at 2026-01-01T00:00:00\.000Z; connect again/);
    // With a grace past the expiry, the message says until when the session could have run.
    const graced = tokenExpiredError(session(1_767_225_600_000 + 3_630_000));
    assert.match(graced.message, /expired at 2026-01-01T00:00:00\.000Z; a session may outlive its token until 2026-01-01T01:00:30\.000Z \(identity\.tokenExpiryGrace\); connect again/);
  });
});
