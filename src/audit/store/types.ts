/**
 * What every audit store offers, so the writer, verifier, queries and exporters are written once.
 * Stores keep bytes and indexes; they never decide what is valid — `verify` does, from the bytes.
 */

export interface StoredEvent {
  readonly seq: number;
  readonly id: string;
  readonly ts: number;
  readonly type: string;
  readonly sessionId: string | null;
  readonly subject: string | null;
  readonly connection: string | null;
  readonly outcome: string | null;
  /** Canonical JSON of the record: the exact bytes of the Merkle leaf. */
  readonly body: string;
  /** Leaf hash as written (verify recomputes it from `body`). */
  readonly hash: Buffer;
}

export interface StoredCheckpoint {
  readonly size: number;
  readonly ts: number;
  readonly root: Buffer;
  /** The signed note. */
  readonly note: string;
}

/** A range of records removed by retention; their leaf hashes stay so the tree still verifies. */
export interface PrunedSegment {
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Concatenated 32-byte leaf hashes of seq firstSeq..lastSeq. */
  readonly leaves: Buffer;
  readonly prunedAt: number;
}

/** The writer's position: the log's size, last leaf and Merkle frontier. A cache, never trusted by verify. */
export interface LogHead {
  readonly size: number;
  readonly lastHash: Buffer | null;
  readonly frontier: Buffer;
  readonly checkpointSize: number;
  readonly checkpointTs: number;
}

export interface BatchWrite {
  readonly events: readonly StoredEvent[];
  /** Signed checkpoints, in size order (one every `checkpointEvery` records, or one forced). */
  readonly checkpoints: readonly StoredCheckpoint[];
  readonly head: LogHead;
}

export interface SessionFilter {
  readonly subject?: string;
  readonly connection?: string;
  /** ms since epoch */
  readonly since?: number;
  readonly until?: number;
  readonly limit?: number;
}

export interface SessionStat {
  readonly sessionId: string;
  readonly type: string;
  readonly outcome: string | null;
  readonly count: number;
  readonly lastTs: number;
}

export interface AuditStore {
  readonly kind: 'sqlite' | 'postgres';
  /** A human-readable location for messages (file path or `postgres`). */
  readonly location: string;
  getMeta(key: string): Promise<string | undefined>;
  /** Insert a meta value unless one exists; returns the value now stored. */
  initMeta(key: string, value: string): Promise<string>;
  /**
   * One write transaction that holds the log's head lock: `build` sees the committed head and
   * returns what to write. Resolves after commit; rejects if nothing was written.
   */
  appendBatch(build: (head: LogHead) => BatchWrite | null): Promise<BatchWrite | null>;
  readHead(): Promise<LogHead>;
  /** Events with seq > afterSeq in seq order. */
  readEvents(afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /** Events with ts >= sinceTs and seq > afterSeq, in seq order. */
  readEventsSince(sinceTs: number, afterSeq: number, limit: number): Promise<StoredEvent[]>;
  findEvent(id: string): Promise<StoredEvent | undefined>;
  readLeafHashes(fromSeq: number, toSeq: number): Promise<Buffer[]>;
  readCheckpoints(): Promise<StoredCheckpoint[]>;
  readPruned(): Promise<PrunedSegment[]>;
  /** Record a pruned segment and delete its events in one transaction. */
  prune(segment: PrunedSegment): Promise<void>;
  sessionStarts(filter: SessionFilter): Promise<StoredEvent[]>;
  sessionStats(sessionIds: readonly string[]): Promise<SessionStat[]>;
  /** The `session.end` records of these sessions (how each ended, for `sessions list`). */
  sessionEnds(sessionIds: readonly string[]): Promise<StoredEvent[]>;
  /** A session's records in log order: those after `afterSeq`, at most `limit` of them. */
  sessionEvents(sessionId: string, afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /** The newest event of `type`, if any. */
  lastOfType(type: string): Promise<StoredEvent | undefined>;
  getCursor(name: string): Promise<number>;
  setCursor(name: string, seq: number): Promise<void>;
  close(): Promise<void>;
}

export const EMPTY_HEAD: LogHead = { size: 0, lastHash: null, frontier: Buffer.alloc(0), checkpointSize: 0, checkpointTs: 0 };
