/** Assert that a promise rejects with a SluiceError carrying `code` (and, optionally, a message matching `message`). */
import assert from 'node:assert/strict';
import { SluiceError, type SluiceErrorCode } from '../../../src/errors.js';

export async function rejectsWithCode(promise: Promise<unknown>, code: SluiceErrorCode, message?: RegExp): Promise<SluiceError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SluiceError, `expected a SluiceError ${code}, got ${caught === undefined ? 'success' : String(caught)}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  if (message !== undefined) assert.match(caught.message, message);
  return caught;
}
