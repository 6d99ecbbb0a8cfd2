/**
 * What a held client is told, the same for every engine: the notice when the hold starts and the
 * error when it ends without approval. Engines render these natively (PostgreSQL NoticeResponse /
 * ErrorResponse, HTTP problem body).
 */
import { formatDuration } from '../config/index.js';
import { SluiceError } from '../errors.js';
import { approveCommand } from './notify.js';
import type { ApprovalHandle, ApprovalOutcome } from './types.js';

/** One line for the NoticeResponse sent when a statement is held. */
export function holdNotice(handle: Pick<ApprovalHandle, 'id' | 'url' | 'expiresAt'>, now: number = Date.now()): string {
  const left = Math.max(0, Math.round((handle.expiresAt - now) / 1000) * 1000);
  return `sluice: statement held for approval ${handle.id}; a reviewer can run "${approveCommand(handle.id)}" or POST ${handle.url}/approve (expires in ${formatDuration(left)})`;
}

/** The error a held statement fails with, or undefined when it was approved and may run. */
export function outcomeError(id: string, outcome: ApprovalOutcome): SluiceError | undefined {
  switch (outcome.state) {
    case 'approved':
      return undefined;
    case 'denied':
      return new SluiceError('SLUICE_APPROVAL_DENIED', `sluice: approval request ${id} was denied by ${outcome.approvers.join(', ') || 'a reviewer'}: ${outcome.reason ?? 'no reason given'}`);
    case 'expired':
      return new SluiceError('SLUICE_APPROVAL_EXPIRED', `sluice: approval request ${id} expired before a reviewer decided`);
    case 'withdrawn':
      return new SluiceError('SLUICE_APPROVAL_FORBIDDEN', `sluice: approval request ${id} was withdrawn: ${outcome.reason ?? 'withdrawn'}`);
    default: {
      const never: never = outcome.state;
      return new SluiceError('SLUICE_APPROVAL_FORBIDDEN', `sluice: approval request ${id} ended in an unknown state ${String(never)}`);
    }
  }
}
