// Splits a byte stream into lines, bounded so one endless line cannot exhaust memory.

export const MAX_LINE_BYTES = 64 * 1024;

/**
 * Feed chunks with push(), then end(). Lines end at "\n" (a trailing "\r" is dropped).
 * A line longer than maxBytes is emitted cut at maxBytes and the rest of it is discarded.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;

  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxBytes = MAX_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!this.discarding) this.append(chunk.subarray(start, end));
      if (nl === -1) return;
      if (!this.discarding) this.flush();
      this.discarding = false;
      start = nl + 1;
    }
  }

  end(): void {
    if (!this.discarding && this.size > 0) this.flush();
    this.discarding = false;
    this.parts = [];
    this.size = 0;
  }

  private append(piece: Buffer): void {
    if (piece.length === 0) return;
    const room = this.maxBytes - this.size;
    if (piece.length <= room) {
      this.parts.push(piece);
      this.size += piece.length;
      return;
    }
    this.parts.push(piece.subarray(0, room));
    this.size += room;
    this.flush();
    this.discarding = true;
  }

  private flush(): void {
    let line = Buffer.concat(this.parts, this.size).toString('utf8');
    this.parts = [];
    this.size = 0;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.emit(line);
  }
}
