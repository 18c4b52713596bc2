/**
 * The replay library (DESIGN.md "Replay"): reconstruct any request's path from the log, show the
 * cluster as the routers saw it, re-derive every routing decision, and rerun a request. The CLI
 * (`switchyard replay …`, cli/commands/replay.ts) is a thin layer over these functions.
 */
export { ReplayError, isReplayError, type ReplayErrorCode } from './errors.js';
export { openLogSource, logSourceFrom, decodeRecord, readAt, type LogSource, type LogSourceParts, type Undecodable } from './source.js';
export { planScan, scanRecords, scanEvents, scanEventBatches, offsetForTime, PartitionCursor, type ProgressFn, type TimeWindow, type OffsetBound, type PartitionRange, type ScannedEvent } from './scan.js';
export { RequestIndex, type IndexKind, type IndexUpdate } from './request-index.js';
export { findRequests, findSession, type FoundEvent, type LookupOptions, type LookupResult, type SessionLookup } from './lookup.js';
export { buildTrace, jsonSafe, type RequestTrace, type Hop, type HopKind, type Outcome, type Stage } from './trace.js';
export { buildSessionTrace, type SessionTrace, type SessionStep, type SessionMove } from './session.js';
export { clusterAt, clusterAtClock, clockAt, type ClusterView, type WorkerRow, type ModelRow, type ZoneRow } from './cluster.js';
export { verifyDecisions, listDecisions, verifyListed, type VerifyOptions, type VerifyReport, type Divergence, type SkipReason, type DecisionList } from './verify.js';
export { verifyDecisionsParallel, type ParallelOptions } from './parallel.js';
export { rerunRequest, diffOutputs, type RerunOptions, type RerunResult, type RerunOutput } from './rerun.js';
export { diffValues, type FieldDiff } from './diff.js';
export { ClockFold } from './fold.js';
export { parseTime, parseDuration, formatDuration, iso } from './time.js';
export { traceText, sessionText, clusterText, verifyText, rerunText, candidatesTable } from './render-text.js';
export { traceHtml, sessionHtml } from './render-html.js';
