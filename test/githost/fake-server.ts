// The HTTP shell shared by the fake git hosts: a loopback server, the request body read
// (JSON when it parses), a crash in a handler recorded as a violation instead of hanging.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export abstract class FakeServer {
  readonly violations: string[] = [];
  url = '';
  private server?: Server;

  protected abstract handle(
    req: IncomingMessage,
    res: ServerResponse,
    body: unknown,
    raw: string,
  ): Promise<void> | void;

  /** Listens on loopback: a free port, or `port` (the standalone fake-github-server.ts). */
  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      this.receive(req, res).catch((err: unknown) => {
        this.violations.push(`fake crashed on ${req.method} ${req.url}: ${(err as Error).stack}`);
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    await this.handle(req, res, body, raw);
  }
}
