/**
 * `sluice audit verify|controls|export|receipt|verify-receipt|prune|rotate-key`: work on the store named in the config
 * directly, so an auditor needs no running gateway.
 */
import { readFileSync } from 'node:fs';
import { defaultConfigPath, loadConfigFile } from '../../config/index.js';
import {
  createReceipt,
  EXPORT_FORMATS,
  exportRecords,
  loadVerifiers,
  rotateSigningKey,
  WriterLockHeld,
  AUDIT_DEFAULTS,
  openAuditStore,
  parseSince,
  resolveAuditSettings,
  verifyConfiguredLog,
  verifyReceipt,
  type ExportFormat,
  openAuditLog,
} from '../../audit/index.js';
import { parseFlags, runSubcommand, UsageError, writeJson, type CliIo } from '../io.js';
import { controlsReport, type ControlsReport } from '../../audit/controls.js';
import { createPolicyEngine } from '../../policy/index.js';
import { SluiceError } from '../../errors.js';

const HELP = `Usage: sluice audit <command> [options]

Commands:
  verify   --config F [--key VKEY] [--json]
           Recompute every hash, link and signed checkpoint. Exit 0 when intact; otherwise
           exit 1 and name the first bad record (edited, deleted, inserted, reordered, truncated).
  controls --config F [--since T] [--key VKEY] [--json]
           The NIST SP 800-53 controls Sluice helps meet (AC-2/3/5/6, AU-2/3/6/9/10/11/12,
           IA-2/5, SC-8/13): how, what the config says, what the verified log shows over the
           window, and how to check. Status ok, attention (the config weakens it: a literal
           credential, a cleartext hop, an unconditional allow-all), failed (the log does not
           verify) or off. Exit 1 when a control failed.
  export   --config F --format jsonl|ocsf|cef [--since T]
           Write records to stdout, one per line. T is a date (2026-11-01, RFC 3339) or a
           duration back from now (24h, 7d). jsonl lines are the hashed bytes of each record.
  receipt  --config F EVENT_ID
           Print an inclusion proof for one record against the latest signed checkpoint (JSON).
  verify-receipt FILE [--config F | --key VKEY]
           Check a receipt offline with the verifier key.
  prune    --config F
           Apply audit.retention now: remove whole sealed segments older than it (AU-11).
  rotate-key --config F
           Replace the checkpoint signing key (stop the gateway first). Records a key.rotate
           event, seals it with a checkpoint signed by the old key, then installs the new key and
           adds its verifier to the .pub keyring; older checkpoints keep verifying.

Options:
  --config F   sluice.yaml (default: $SLUICE_CONFIG or ./sluice.yaml)
  --key VKEY   verifier key(s) (name+id+base64, one per line), default: the .pub keyring beside
               audit.signingKey
  -h, --help   show this help
`;

export async function run(args: string[], io: CliIo): Promise<number> {
  return runSubcommand('audit', args, io, HELP, { verify, controls, export: exportCmd, receipt, 'verify-receipt': verifyReceiptCmd, prune, 'rotate-key': rotateKey });
}

const common = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function load(io: CliIo, config: string | undefined) {
  return loadConfigFile(defaultConfigPath(config, io.env), { env: io.env });
}

async function verify(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, { ...common, key: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help === true) return help(io);
  const config = load(io, values.config);
  const report = await verifyConfiguredLog(config, values.key !== undefined ? { verifierKey: values.key } : {});
  if (values.json === true) {
    writeJson(io, report);
    return report.ok ? 0 : 1;
  }
  if (report.ok) {
    const cp = report.latestCheckpoint;
    io.stdout.write(
      `audit log intact: ${report.records} records` +
        (report.pruned > 0 ? ` (+${report.pruned} removed by retention, hashes kept)` : '') +
        `, ${report.checkpoints} signed checkpoints` +
        (cp !== undefined ? `, latest covers ${cp.size} (signed by ${cp.signedBy.join(', ')} at ${new Date(cp.ts).toISOString()})` : ', none yet') +
        (report.unsigned > 0 ? `; ${report.unsigned} newer records are hash-chained but not yet signed` : '') +
        '\n',
    );
    return 0;
  }
  const p = report.problem;
  io.stdout.write(`audit log TAMPERED: first bad record ${p?.seq ?? '?'}${p?.id !== undefined ? ` (id ${p.id})` : ''}: ${p?.kind ?? 'unknown'}: ${p?.message ?? ''}\n`);
  return 1;
}

async function controls(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, { ...common, since: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help === true) return help(io);
  const now = Date.now();
  let since: number | undefined;
  try {
    since = values.since === undefined ? undefined : parseSince(values.since, now);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const config = load(io, values.config);
  const verify = await verifyConfiguredLog(config, values.key !== undefined ? { verifierKey: values.key } : {});
  const policy = createPolicyEngine(config);
  const store = await openAuditStore(config, { readonly: true });
  let report: ControlsReport;
  try {
    report = await controlsReport({ config, settings: resolveAuditSettings(config), store, verify, readOnly: (role, connection) => policy.isReadOnly(role, connection), ...(since !== undefined ? { since } : {}), now });
  } finally {
    await store.close();
  }
  const failed = report.controls.some((c) => c.status === 'failed');
  if (values.json === true) {
    writeJson(io, report);
    return failed ? 1 : 0;
  }
  const w = (line: string): void => void io.stdout.write(line + '\n');
  w(`NIST SP 800-53 controls: ${report.config} (node ${report.node})`);
  w(`audit log: ${report.log.ok ? 'verifies' : `DOES NOT VERIFY (${report.log.problem ?? ''})`}, ${report.log.records} records, ${report.log.checkpoints} signed checkpoints; figures ${since === undefined ? 'over the whole log' : `since ${new Date(since).toISOString()}`}`);
  for (const c of report.controls) {
    w('');
    w(`${c.id.padEnd(6)} ${c.title.padEnd(46)} ${c.status.toUpperCase()}`);
    w(`       ${c.how}`);
    for (const f of c.findings) w(`       - ${f}`);
    w(`       check: ${c.check}`);
  }
  const tally = (s: string): number => report.controls.filter((c) => c.status === s).length;
  w('');
  w(`${tally('ok')} ok, ${tally('attention')} attention, ${tally('failed')} failed, ${tally('off')} off`);
  return failed ? 1 : 0;
}

async function exportCmd(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, { ...common, format: { type: 'string' }, since: { type: 'string' } });
  if (values.help === true) return help(io);
  const format = values.format;
  if (format === undefined || !(EXPORT_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}`);
  let since: number | undefined;
  try {
    since = values.since === undefined ? undefined : parseSince(values.since, Date.now());
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const config = load(io, values.config);
  const store = await openAuditStore(config, { readonly: true });
  try {
    await exportRecords(store, { format: format as ExportFormat, ...(since !== undefined ? { since } : {}) }, (line) => {
      if (!io.stdout.write(line + '\n')) {
        return new Promise<void>((resolve) => io.stdout.once('drain', () => resolve()));
      }
      return undefined;
    });
  } finally {
    await store.close();
  }
  return 0;
}

async function receipt(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...common }, true);
  if (values.help === true) return help(io);
  const [id] = positionals;
  if (id === undefined || positionals.length !== 1) throw new UsageError('receipt takes one EVENT_ID');
  const config = load(io, values.config);
  const store = await openAuditStore(config, { readonly: true });
  let covered: boolean;
  try {
    const ev = await store.findEvent(id);
    if (ev === undefined) throw new UsageError(`no audit record with id ${id}`);
    const cps = await store.readCheckpoints();
    covered = (cps[cps.length - 1]?.size ?? 0) >= ev.seq;
    if (covered) {
      writeJson(io, await createReceipt(store, id));
      return 0;
    }
  } finally {
    await store.close();
  }
  // Not yet signed: seal a checkpoint now (the signing key is needed, as for the gateway). A
  // running gateway owns the log and signs one every audit.checkpointInterval.
  const log = await openAuditLog(config, { mask: (s) => s, writer: 'inline' }).catch((err: unknown) => {
    if (err instanceof WriterLockHeld) {
      const every = config.audit.checkpointInterval ?? `${AUDIT_DEFAULTS.checkpointIntervalMs / 1000}s`;
      throw new SluiceError('SLUICE_AUDIT_UNAVAILABLE', `record ${id} is not yet covered by a signed checkpoint, and a running gateway owns the log (${err.holder}); it signs one every ${every}: try again then`);
    }
    throw err;
  });
  try {
    await log.checkpoint();
    writeJson(io, await createReceipt(log.store, id));
  } finally {
    await log.close();
  }
  return 0;
}

async function verifyReceiptCmd(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...common, key: { type: 'string' } }, true);
  if (values.help === true) return help(io);
  const [file] = positionals;
  if (file === undefined || positionals.length !== 1) throw new UsageError('verify-receipt takes one FILE (- for stdin)');
  const text = file === '-' ? await readAll(io.stdin) : readFileSync(file, 'utf8');
  let keyPath = '';
  if (values.key === undefined) keyPath = resolveAuditSettings(load(io, values.config)).signingKeyPath;
  const verifiers = loadVerifiers(keyPath, values.key);
  try {
    const ok = verifyReceipt(JSON.parse(text) as unknown, verifiers);
    io.stdout.write(`receipt valid: record ${ok.record.seq} (${ok.record.id}, ${ok.record.type} at ${new Date(ok.record.ts).toISOString()}) is in the log of size ${ok.checkpoint.size} signed by ${ok.signedBy.join(', ')}\n`);
    return 0;
  } catch (err) {
    io.stdout.write(`receipt INVALID: ${(err as Error).message}\n`);
    return 1;
  }
}

async function prune(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, { ...common });
  if (values.help === true) return help(io);
  const config = load(io, values.config);
  const settings = resolveAuditSettings(config);
  if (settings.retentionMs === undefined) throw new UsageError('audit.retention is not set in the config');
  const log = await openAuditLog(config, { mask: (s) => s, writer: 'inline' });
  try {
    const r = await log.applyRetention();
    io.stdout.write(`removed ${r.records} records in ${r.segments} sealed segments (through ${r.throughSeq}); their hashes are kept\n`);
  } finally {
    await log.close();
  }
  return 0;
}

async function rotateKey(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, { ...common });
  if (values.help === true) return help(io);
  const r = await rotateSigningKey(load(io, values.config));
  io.stdout.write(`rotated the audit signing key: ${r.old.name} ${hex8(r.old.keyId)} → ${r.next.name} ${hex8(r.next.keyId)}; key.rotate is record ${r.seq}, sealed by the old key in the checkpoint of size ${r.sealedSize}\n`);
  return 0;
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

function help(io: CliIo): number {
  io.stdout.write(HELP);
  return 0;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
