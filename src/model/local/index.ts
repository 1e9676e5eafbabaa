export { startLocalModel, type LocalModel, type UpgradeRecord } from './server.js';
export type { LocalModelOptions } from './options.js';
export type { LocalSession, RecordedClientEvent, RecordedServerEvent, ResponseRecord, TruncationRecord } from './session.js';
export { toneSweep, type LocalFormat } from './audio.js';
