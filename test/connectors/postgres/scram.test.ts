import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { md5Password, scramClientFinal, scramClientFirst, scramVerifyServerFinal } from '../../../src/connectors/postgres/scram.js';
import { SluiceError } from '../../../src/errors.js';

describe('SCRAM-SHA-256 client', () => {
  // RFC 7677 section 3 test vector.
  const state = { clientNonce: 'rOprNGfwEbeRWgbNEkqO', clientFirstBare: 'n=user,r=rOprNGfwEbeRWgbNEkqO' };
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';

  it('computes the RFC 7677 client proof and server signature', () => {
    const final = scramClientFinal(state, serverFirst, 'pencil');
    assert.equal(final.message, 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    scramVerifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=', final.expectedServerSignature);
  });

  it('refuses a server that cannot prove it knows the password', () => {
    const final = scramClientFinal(state, serverFirst, 'pencil');
    assert.throws(() => scramVerifyServerFinal('v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', final.expectedServerSignature), SluiceError);
    assert.throws(() => scramVerifyServerFinal('e=invalid-proof', final.expectedServerSignature), SluiceError);
  });

  it('refuses a server nonce that does not extend ours, and absurd iteration counts', () => {
    assert.throws(() => scramClientFinal(state, 'r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', 'pencil'), /nonce/);
    assert.throws(() => scramClientFinal(state, `r=${state.clientNonce}x,s=AA==,i=99999999`, 'pencil'), /malformed/);
    assert.throws(() => scramClientFinal(state, `r=${state.clientNonce}x,s=AA==`, 'pencil'), /malformed/);
  });

  it('starts with a fresh nonce and no user name (PostgreSQL takes it from the startup packet)', () => {
    const a = scramClientFirst();
    const b = scramClientFirst();
    assert.match(a.message, /^n,,n=,r=[A-Za-z0-9+/=]{24}$/);
    assert.notEqual(a.state.clientNonce, b.state.clientNonce);
  });

  it('builds md5 passwords as PostgreSQL does', () => {
    // md5(md5(password + user) + salt), vector computed independently with Python's hashlib.
    assert.equal(md5Password('alice', 'secret', Buffer.from([1, 2, 3, 4])), 'md598a0412b9c31436fc53776e863350083');
  });
});
