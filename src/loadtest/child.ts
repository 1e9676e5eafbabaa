// Child processes of a load test (bridge, model, generator), each its own process so that only
// the bridge's CPU is in the bridge's /proc numbers. Commands go over the IPC channel as
// {id, cmd, args} and come back as {id, ok, result | error}; 'advanced' serialization carries
// typed arrays (per-frame timestamps) without JSON.
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const HERE = dirname(SELF);
/** .ts when run from the sources (tsx), .js from dist. */
const EXT = extname(SELF);
export const REPO_ROOT = join(HERE, '..', '..');

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** The tsx loader, so children run the TypeScript sources directly. */
function tsxImport(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
}

export interface ChildOptions {
  env?: Record<string, string | undefined>;
  execArgv?: string[];
  /** Called with each line the child writes to stdout/stderr. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export class Child {
  readonly proc: ChildProcess;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private exited = false;
  private readonly exitPromise: Promise<number | null>;
  /** A message the child sent on its own ({event: ...}), e.g. 'ready'. */
  private readonly events: Array<{ event: string; [k: string]: unknown }> = [];
  private readonly eventWaiters: Array<{ event: string; resolve: (v: any) => void }> = [];

  constructor(readonly name: string, module: string, args: string[] = [], opts: ChildOptions = {}) {
    this.proc = fork(join(HERE, module + EXT), args, {
      cwd: REPO_ROOT,
      env: { ...process.env, ...opts.env },
      execArgv: ['--import', tsxImport(), ...(opts.execArgv ?? [])],
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      let buf = '';
      this.proc[stream]!.setEncoding('utf8');
      this.proc[stream]!.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (opts.onLine) opts.onLine(line, stream);
          else if (line.trim()) process.stderr.write(`[${name}] ${line}\n`);
        }
      });
    }
    this.proc.on('message', (m: any) => {
      if (m && typeof m.id === 'number') {
        const w = this.waiting.get(m.id);
        if (!w) return;
        this.waiting.delete(m.id);
        const r = m as Reply;
        if (r.ok) w.resolve(r.result);
        else w.reject(new Error(`${name}: ${r.error}`));
      } else if (m && typeof m.event === 'string') {
        const i = this.eventWaiters.findIndex((x) => x.event === m.event);
        if (i >= 0) this.eventWaiters.splice(i, 1)[0].resolve(m);
        else this.events.push(m);
      }
    });
    this.exitPromise = new Promise((resolve) => {
      this.proc.on('exit', (code) => {
        this.exited = true;
        for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (code ${code})`));
        this.waiting.clear();
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Resolves with the child's first {event} message of this name. */
  waitEvent<T = Record<string, unknown>>(event: string, timeoutMs = 30_000): Promise<T> {
    const i = this.events.findIndex((m) => m.event === event);
    if (i >= 0) return Promise.resolve(this.events.splice(i, 1)[0] as T);
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no '${event}' within ${timeoutMs} ms`)), timeoutMs);
      const entry = { event, resolve: (v: T) => { clearTimeout(t); resolve(v); } };
      this.eventWaiters.push(entry);
      void this.exitPromise.then((code) => {
        clearTimeout(t);
        reject(new Error(`${this.name} exited (code ${code}) before '${event}'`));
      });
    });
  }

  request<T = unknown>(cmd: string, args: unknown = {}, timeoutMs = 600_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: '${cmd}' timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => { clearTimeout(t); resolve(v as T); },
        reject: (e) => { clearTimeout(t); reject(e); },
      });
      this.proc.send({ id, cmd, args } satisfies Request);
    });
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exited) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => { if (!this.exited) this.proc.kill('SIGKILL'); }, graceMs);
    await this.exitPromise;
    clearTimeout(t);
  }
}

// ---- child side ---------------------------------------------------------------------------------

export type Handlers = Record<string, (args: any) => unknown>;

/** Serves IPC requests in a child; the child exits when its parent goes away. */
export function serve(handlers: Handlers): void {
  process.on('message', (m: Request) => {
    if (!m || typeof m.id !== 'number') return;
    const h = handlers[m.cmd];
    const reply = (r: Reply) => {
      if (process.connected) process.send!(r);
    };
    if (!h) {
      reply({ id: m.id, ok: false, error: `unknown command ${m.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => h(m.args))
      .then(
        (result) => reply({ id: m.id, ok: true, result }),
        (e: unknown) => reply({ id: m.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

export function announce(event: string, data: Record<string, unknown> = {}): void {
  if (process.connected) process.send!({ event, ...data });
}
