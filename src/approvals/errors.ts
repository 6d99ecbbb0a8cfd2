/**
 * Errors the approval service raises. All are `SluiceError`s with SLUICE_APPROVAL_* codes; a
 * transition asked of a request that is no longer pending renders as HTTP 409 Conflict, because
 * the request exists and the caller may act on it, but its state forbids the transition.
 */
import { SluiceError, type SluiceErrorCode } from '../errors.js';
import type { ApprovalState } from './types.js';

const CODE_FOR_STATE: Readonly<Record<Exclude<ApprovalState, 'pending'>, SluiceErrorCode>> = {
  approved: 'SLUICE_APPROVAL_FORBIDDEN',
  denied: 'SLUICE_APPROVAL_DENIED',
  expired: 'SLUICE_APPROVAL_EXPIRED',
  withdrawn: 'SLUICE_APPROVAL_FORBIDDEN',
};

/** The request is no longer pending (`state` says what it became). HTTP 409. */
export class ApprovalNotPendingError extends SluiceError {
  readonly state: Exclude<ApprovalState, 'pending'>;

  constructor(id: string, state: Exclude<ApprovalState, 'pending'>) {
    super(CODE_FOR_STATE[state], `approval request ${id} is ${state}, not pending`, { detail: `state=${state}` });
    this.name = 'ApprovalNotPendingError';
    this.state = state;
  }

  override get httpStatus(): number {
    return 409;
  }
}

export function notFound(id: string): SluiceError {
  return new SluiceError('SLUICE_APPROVAL_NOT_FOUND', `no approval request ${JSON.stringify(id.slice(0, 64))}`);
}

export function forbidden(message: string): SluiceError {
  return new SluiceError('SLUICE_APPROVAL_FORBIDDEN', message);
}
