// What Twilio holds and what the caller has heard, per model item. Twilio plays what we send in
// real time from when it arrives, so `dryAt` (when its buffer runs out) predicts the play
// position; marks echoed by Twilio confirm it, and a mark not yet echoed bounds it. Marks echoed
// because of a `clear` are not playback and are not counted (PROTOCOLS.md §1).

interface ItemTrack {
  id: string;
  /** ms of this item's audio sent to Twilio. */
  sentMs: number;
  /** ms confirmed played by an echoed mark. */
  confirmedMs: number;
  lastMarkMs: number;
}

interface PendingMark {
  name: string;
  item: ItemTrack;
  ms: number;
}

export interface Heard {
  itemId: string;
  /** ms of the item the caller heard, in [0, sentMs]. */
  audioEndMs: number;
  sentMs: number;
  /** ms of the item confirmed played by an echoed mark: audioEndMs minus this was estimated. */
  confirmedMs: number;
}

export class Playback {
  /** The model finished sending audio for the current response (flush partial frames). */
  audioDone = false;
  droppedItemId: string | undefined;
  private item: ItemTrack | undefined;
  private dryAt = -Infinity;
  private pending: PendingMark[] = [];
  private markSeq = 0;

  constructor(private readonly markIntervalMs: number) {}

  get currentItemId(): string | undefined { return this.item?.id; }

  /** The first audio of item `id` is being sent (Call tracks which item each queued byte is). */
  startItem(id: string): void {
    this.item = { id, sentMs: 0, confirmedMs: 0, lastMarkMs: 0 };
  }

  /** ms of audio Twilio still holds at time t; negative: ms since it ran dry. */
  bufferedMs(t: number): number {
    return this.dryAt - t;
  }

  /**
   * Records a frame of `ms` sent at time t; returns a mark name to send after it when the mark
   * interval is reached or the item's audio ends (`last`), else null.
   */
  sent(ms: number, t: number, last: boolean): string | null {
    this.dryAt = Math.max(this.dryAt, t) + ms;
    const item = this.item;
    if (!item) return null;
    item.sentMs += ms;
    if (item.sentMs - item.lastMarkMs < this.markIntervalMs && !last) return null;
    item.lastMarkMs = item.sentMs;
    const name = `vb${++this.markSeq}`;
    this.pending.push({ name, item, ms: item.sentMs });
    return name;
  }

  /** A mark echo: true if it confirms playback, false if unknown or emptied by a clear. */
  played(name: string, _t: number): boolean {
    const pending = this.pending;
    let i = 0;
    while (i < pending.length && pending[i].name !== name) i++;
    if (i === pending.length) return false;
    const m = pending[i];
    // Twilio echoes in order, so earlier marks were passed too.
    this.pending.splice(0, i + 1);
    m.item.confirmedMs = Math.max(m.item.confirmedMs, m.ms);
    return true;
  }

  /** What the caller has heard of the current item at time t, or null if nothing was sent. */
  heard(t: number): Heard | null {
    const item = this.item;
    if (!item || item.sentMs === 0) return null;
    let est = item.sentMs - Math.max(0, this.dryAt - t);
    const next = this.pending.find((m) => m.item === item);
    if (next && est > next.ms) est = next.ms;
    if (est < item.confirmedMs) est = item.confirmedMs;
    const audioEndMs = Math.max(0, Math.min(item.sentMs, Math.round(est)));
    return { itemId: item.id, audioEndMs, sentMs: item.sentMs, confirmedMs: item.confirmedMs };
  }

  /** After a clear at time t: Twilio holds nothing, pending marks will echo unplayed. */
  cleared(droppedItemId: string | undefined, t: number): void {
    this.droppedItemId = droppedItemId;
    this.pending = [];
    this.dryAt = Math.min(this.dryAt, t);
    this.item = undefined;
    this.audioDone = true;
  }
}
