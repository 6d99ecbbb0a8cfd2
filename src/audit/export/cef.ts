/**
 * ArcSight Common Event Format (CEF) 0. Escaping follows the CEF spec ("Implementing ArcSight
 * CEF", rev. 25): in header fields `\` and `|` are backslash-escaped; in extension values `\` and
 * `=` are escaped and CR/LF become `\r` / `\n` (a raw newline would end the event, which is how an
 * attacker's SQL text could forge a second event otherwise).
 */
import type { AuditRecord } from '../event.js';

export function escapeCefHeader(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r\n|\r|\n/g, ' ');
}

export function escapeCefExtension(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r\n/g, '\\n').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

const SEVERITY: Readonly<Record<string, number>> = { denied: 7, failure: 5 };

function severityOf(r: AuditRecord): number {
  if (r.type === 'auth.failure') return 7;
  if (r.type === 'upstream.error') return 5;
  return SEVERITY[r.outcome ?? ''] ?? 3;
}

function nameOf(r: AuditRecord): string {
  if (r.type === 'command') return `${r.command?.verb ?? 'command'} ${r.decision?.effect ?? ''}`.trim();
  return r.type;
}

export function toCef(r: AuditRecord): string {
  const ext: [string, string | number | undefined][] = [];
  const src = r.source === undefined ? undefined : /^\[?([^\]]+?)\]?:(\d+)$/.exec(r.source);
  ext.push(['rt', r.ts]);
  ext.push(['externalId', r.id]);
  ext.push(['dvchost', r.node]);
  ext.push(['cnt', r.seq]);
  if (src !== null && src !== undefined) {
    ext.push(['src', src[1]]);
    ext.push(['spt', src[2]]);
  } else if (r.source !== undefined) ext.push(['src', r.source]);
  if (r.identity !== undefined) {
    ext.push(['suser', r.identity.subject]);
    ext.push(['cs4Label', 'issuer'], ['cs4', r.identity.issuer]);
    if (r.identity.model !== undefined) ext.push(['cs6Label', 'model'], ['cs6', r.identity.model]);
    const run = r.identity.claims?.run_id;
    if (run !== undefined) ext.push(['cs5Label', 'runId'], ['cs5', String(run)]);
  }
  if (r.role !== undefined) ext.push(['spriv', r.role]);
  if (r.upstream?.target !== undefined) ext.push(['dhost', r.upstream.target]);
  if (r.upstream?.account !== undefined) ext.push(['duser', r.upstream.account]);
  if (r.connection !== undefined) ext.push(['destinationServiceName', r.connection]);
  if (r.protocol !== undefined) ext.push(['app', r.protocol]);
  if (r.session !== undefined) ext.push(['cs2Label', 'sessionId'], ['cs2', r.session]);
  if (r.decision !== undefined) {
    ext.push(['act', r.decision.effect]);
    ext.push(['cs1Label', 'rule'], ['cs1', r.decision.rule]);
    if (r.decision.reason !== undefined) ext.push(['reason', r.decision.reason]);
  }
  if (r.policyVersion !== undefined) ext.push(['cs3Label', 'policyVersion'], ['cs3', r.policyVersion]);
  if (r.outcome !== undefined) ext.push(['outcome', r.outcome]);
  if (r.command !== undefined) ext.push(['request', r.command.text]);
  if (r.rows !== undefined) ext.push(['cn1Label', 'rows'], ['cn1', r.rows]);
  if (r.bytes !== undefined) ext.push(['out', r.bytes]);
  if (r.durationMs !== undefined) ext.push(['cn2Label', 'durationMs'], ['cn2', Math.round(r.durationMs)]);
  if (r.error !== undefined) ext.push(['msg', r.error.message]);
  const extension = ext
    .filter((e): e is [string, string | number] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${escapeCefExtension(String(v))}`)
    .join(' ');
  const header = ['CEF:0', 'Sluice', 'Sluice', '0.1.0', r.type, nameOf(r), String(severityOf(r))].map((h, i) => (i === 0 ? h : escapeCefHeader(h)));
  return `${header.join('|')}|${extension}`;
}
